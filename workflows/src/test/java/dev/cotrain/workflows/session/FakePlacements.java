package dev.cotrain.workflows.session;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Places every attempt's node 0 on {@link #HOST} (device 0) and node 1, if any, on {@link #HOST2}
 * (device 0), meeting at {@code 10.0.0.1:29500}, after {@code waitsFirst} answers that say the
 * session must wait; remembers what it was asked.
 */
final class FakePlacements implements PlacementActivities {

  static final String HOST = "test-host";
  static final String HOST2 = "test-host-2";

  final List<PlaceRequest> asked = new CopyOnWriteArrayList<>();
  final List<String> released = new CopyOnWriteArrayList<>();
  private final AtomicInteger waitsLeft;

  FakePlacements(int waitsFirst) {
    this.waitsLeft = new AtomicInteger(waitsFirst);
  }

  @Override
  public Placement place(PlaceRequest request) {
    asked.add(request);
    if (waitsLeft.getAndDecrement() > 0) {
      return Placement.waiting("waiting for 1 free devices on one host", 1);
    }
    List<Node> others = new ArrayList<>();
    if (request.nodesOrOne() > 1) {
      others.add(new Node(HOST2, TaskQueues.trainingQueue(HOST2), List.of(0)));
    }
    boolean gang = !others.isEmpty();
    return new Placement(
        HOST,
        TaskQueues.trainingQueue(HOST),
        List.of(0),
        null,
        null,
        others,
        gang ? "10.0.0.1" : null,
        gang ? 29500 : null);
  }

  @Override
  public void release(ReleaseRequest request) {
    released.add(request.sessionId());
  }
}
