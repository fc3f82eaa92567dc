package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;
import java.time.Duration;
import java.util.List;

/** Places a session's attempt on a host and its devices (docs/placement.md). */
@ActivityInterface
public interface PlacementActivities {

  /**
   * In one transaction: picks the least-loaded alive host that can hold the attempt now and holds
   * its devices (or one CPU slot on a host without devices) for the session, or says why it must
   * wait. Idempotent: asked again for the same attempt, it answers the same placement. Short;
   * retried until the database answers.
   */
  Placement place(PlaceRequest request);

  /** Frees whatever the session holds. Idempotent. */
  void release(ReleaseRequest request);

  /**
   * {@code gpusPerNode} devices on one host; hosts not seen within {@code aliveWithin} do not
   * count.
   */
  record PlaceRequest(String sessionId, int attempt, int gpusPerNode, Duration aliveWithin) {}

  record ReleaseRequest(String sessionId) {}

  /**
   * Either placed ({@code hostId}, its {@code taskQueue}, the {@code devices} held, empty for a CPU
   * slot), or not ({@code waiting} says why).
   */
  record Placement(String hostId, String taskQueue, List<Integer> devices, String waiting) {
    public boolean placed() {
      return hostId != null;
    }
  }
}
