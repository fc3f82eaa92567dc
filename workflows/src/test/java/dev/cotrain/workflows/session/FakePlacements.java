package dev.cotrain.workflows.session;

import java.util.List;
import java.util.concurrent.CopyOnWriteArrayList;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * Places every attempt on {@link #HOST} (device 0), after {@code waitsFirst} answers that say the
 * session must wait; remembers what it was asked.
 */
final class FakePlacements implements PlacementActivities {

  static final String HOST = "test-host";

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
      return new Placement(null, null, List.of(), "waiting for 1 free devices on one host", 1);
    }
    return new Placement(HOST, TaskQueues.trainingQueue(HOST), List.of(0), null, null);
  }

  @Override
  public void release(ReleaseRequest request) {
    released.add(request.sessionId());
  }
}
