package dev.cotrain.workflows.session;

import io.temporal.activity.ActivityInterface;
import java.time.Duration;
import java.util.ArrayList;
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
   * {@code gpusPerNode} devices on each of {@code nodes} hosts (0, from histories of before gangs,
   * means 1); hosts not seen within {@code aliveWithin} do not count.
   */
  record PlaceRequest(
      String sessionId, int attempt, int gpusPerNode, Duration aliveWithin, int nodes) {
    public int nodesOrOne() {
      return Math.max(1, nodes);
    }
  }

  /**
   * {@code aliveWithin} as in {@link PlaceRequest} (null: the default heartbeat timeout); {@code
   * lostHost}, if set, is a host whose node stopped heartbeating: it counts as gone until its
   * worker is seen again, unless it was seen within the last half of {@code aliveWithin}.
   */
  record ReleaseRequest(String sessionId, Duration aliveWithin, String lostHost) {}

  /**
   * Either placed or not ({@code waiting} says why, {@code position} is its place in the queue from
   * 1). Placed: node 0 runs on {@code hostId} (its {@code taskQueue}, the {@code devices} it holds
   * there, empty for a CPU slot); a session of several nodes has the {@code others} (nodes 1, 2,
   * ...) and meets at {@code masterAddr}:{@code masterPort}, node 0's host.
   */
  record Placement(
      String hostId,
      String taskQueue,
      List<Integer> devices,
      String waiting,
      Integer position,
      List<Node> others,
      String masterAddr,
      Integer masterPort) {
    public boolean placed() {
      return hostId != null;
    }

    /** Every node, node 0 first. */
    public List<Node> nodes() {
      List<Node> nodes = new ArrayList<>();
      nodes.add(new Node(hostId, taskQueue, devices));
      if (others != null) {
        nodes.addAll(others);
      }
      return nodes;
    }

    public static Placement waiting(String why, int position) {
      return new Placement(null, null, List.of(), why, position, List.of(), null, null);
    }
  }

  /** One node of a placement: its host, that host's task queue, the devices it holds there. */
  record Node(String hostId, String taskQueue, List<Integer> devices) {}
}
