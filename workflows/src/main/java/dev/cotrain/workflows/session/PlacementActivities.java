package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;
import java.time.Duration;
import java.util.List;

/** Places a session's attempt on a host and its devices (docs/placement.md). */
@ActivityInterface
public interface PlacementActivities {

  /**
   * In one transaction: queues the session (if it is not yet), runs a pass of the allocator over
   * the whole queue, and answers the session's placement (its devices on one host, or a CPU slot on
   * a host in a cluster without devices) or its queue position and why it waits. Sessions the pass
   * places are woken with {@link TrainingSessionWorkflow#wake()}; running sessions it preempts are
   * sent {@link TrainingSessionWorkflow#preempt}. Idempotent: asked again for the same attempt, it
   * answers the same placement. Short; retried until the database answers.
   */
  Placement place(PlaceRequest request);

  /** Frees whatever the session holds and places whoever is next in the queue. Idempotent. */
  void release(ReleaseRequest request);

  /**
   * {@code gpusPerNode} devices on one host; hosts not seen within {@code aliveWithin} do not
   * count.
   */
  record PlaceRequest(String sessionId, int attempt, int gpusPerNode, Duration aliveWithin) {}

  /** {@code aliveWithin} as in {@link PlaceRequest}; null: the default heartbeat timeout. */
  record ReleaseRequest(String sessionId, Duration aliveWithin) {}

  /**
   * Either placed ({@code hostId}, its {@code taskQueue}, the {@code devices} held, empty for a CPU
   * slot), or not ({@code waiting} says why, {@code position} is its place in the queue from 1).
   */
  record Placement(
      String hostId, String taskQueue, List<Integer> devices, String waiting, Integer position) {
    public boolean placed() {
      return hostId != null;
    }
  }
}
