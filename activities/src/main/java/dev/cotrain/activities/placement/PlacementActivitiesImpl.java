package dev.cotrain.activities.placement;

import dev.cotrain.workflows.session.PlacementActivities;
import java.util.UUID;

public class PlacementActivitiesImpl implements PlacementActivities {

  private final PlacementStore store;

  public PlacementActivitiesImpl(PlacementStore store) {
    this.store = store;
  }

  @Override
  public Placement place(PlaceRequest request) {
    return store.place(
        UUID.fromString(request.sessionId()),
        request.attempt(),
        request.gpusPerNode(),
        request.aliveWithin());
  }

  @Override
  public void release(ReleaseRequest request) {
    store.release(UUID.fromString(request.sessionId()));
  }
}
