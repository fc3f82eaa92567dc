package dev.cotrain.activities.placement;

import dev.cotrain.activities.placement.PlacementStore.Decision;
import dev.cotrain.workflows.session.PlacementActivities;
import dev.cotrain.workflows.session.TaskQueues;
import dev.cotrain.workflows.session.TrainingSessionInput;
import dev.cotrain.workflows.session.TrainingSessionWorkflow;
import dev.cotrain.workflows.session.TrainingSessionWorkflow.PreemptRequest;
import io.temporal.activity.Activity;
import io.temporal.client.WorkflowClient;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * The allocator's activities: each decides in one transaction ({@link PlacementStore}), then, once
 * that has committed, tells the sessions concerned: those it placed are woken, those it preempts
 * are asked to give their devices back. A signal that is lost only delays: a waiting session asks
 * again within seconds, and a pending preemption is sent again whenever its beneficiary asks.
 */
public class PlacementActivitiesImpl implements PlacementActivities {

  private static final Logger log = LoggerFactory.getLogger(PlacementActivitiesImpl.class);

  private final PlacementStore store;

  public PlacementActivitiesImpl(PlacementStore store) {
    this.store = store;
  }

  @Override
  public Placement place(PlaceRequest request) {
    Decision decision =
        store.place(
            UUID.fromString(request.sessionId()),
            request.attempt(),
            request.nodesOrOne(),
            request.gpusPerNode(),
            request.aliveWithin());
    tell(decision);
    return decision.placement();
  }

  @Override
  public void release(ReleaseRequest request) {
    tell(
        store.release(
            UUID.fromString(request.sessionId()),
            request.aliveWithin() == null
                ? TrainingSessionInput.DEFAULT_HEARTBEAT_TIMEOUT
                : request.aliveWithin(),
            request.lostHost()));
  }

  private static void tell(Decision decision) {
    if (!decision.placedOthers().isEmpty() || !decision.preemptions().isEmpty()) {
      tell(Activity.getExecutionContext().getWorkflowClient(), decision);
    }
  }

  /** Wakes the sessions {@code decision} placed and asks those it preempts to stop. */
  public static void tell(WorkflowClient client, Decision decision) {
    for (UUID placed : decision.placedOthers()) {
      signal(client, placed, "wake", w -> w.wake());
    }
    for (Scheduler.Preemption p : decision.preemptions()) {
      signal(client, p.victim(), "preempt", w -> w.preempt(new PreemptRequest(p.reason())));
    }
  }

  private static void signal(
      WorkflowClient client,
      UUID session,
      String what,
      java.util.function.Consumer<TrainingSessionWorkflow> send) {
    try {
      send.accept(
          client.newWorkflowStub(
              TrainingSessionWorkflow.class, TaskQueues.workflowId(session.toString())));
    } catch (RuntimeException e) {
      log.warn("session {}: could not send {}: {}", session, what, e.getMessage());
    }
  }
}
