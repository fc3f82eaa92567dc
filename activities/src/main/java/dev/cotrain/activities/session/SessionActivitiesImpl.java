package dev.cotrain.activities.session;

import dev.cotrain.workflows.session.SessionActivities;

public class SessionActivitiesImpl implements SessionActivities {

  private final SessionStore store;

  public SessionActivitiesImpl(SessionStore store) {
    this.store = store;
  }

  @Override
  public void registerSession(RegisterSession input) {
    store.registerSession(input);
  }

  @Override
  public void recordStatus(StatusChange change) {
    store.recordStatus(change);
  }
}
