package dev.cotrain.activities.placement;

import static org.assertj.core.api.Assertions.assertThat;

import dev.cotrain.activities.placement.Scheduler.Host;
import dev.cotrain.activities.placement.Scheduler.Plan;
import dev.cotrain.activities.placement.Scheduler.Running;
import dev.cotrain.activities.placement.Scheduler.Waiting;
import java.time.Instant;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.UUID;
import java.util.stream.IntStream;
import org.junit.jupiter.api.Test;

/** The allocator's decisions, without the database. */
class SchedulerTest {

  private static final Instant T0 = Instant.parse("2026-11-30T00:00:00Z");

  private int created;

  @Test
  void higherPriorityFirstThenFirstComeFirstServed() {
    Waiting early = waiting("alice", 0, 1);
    Waiting late = waiting("alice", 0, 1);
    Waiting urgent = waiting("alice", 5, 1);

    Plan plan =
        Scheduler.plan(List.of(host("a", 2, 0, 1)), List.of(late, early, urgent), List.of());

    assertThat(plan.placed()).containsOnlyKeys(urgent.sessionId(), early.sessionId());
    assertThat(plan.waiting().get(late.sessionId()).position()).isEqualTo(1);
  }

  @Test
  void fairShareGivesTheOwnerHoldingLeastTheNextTurn() {
    List<Waiting> alice = IntStream.range(0, 3).mapToObj(i -> waiting("alice", 0, 1)).toList();
    Waiting bob1 = waiting("bob", 0, 1);
    Waiting bob2 = waiting("bob", 0, 1);
    List<Waiting> queue = new ArrayList<>(alice);
    queue.add(bob1);
    queue.add(bob2);
    // Alice already holds one device elsewhere: Bob goes first, then they alternate.
    List<Running> running = List.of(running("alice", "b", 1, 0));

    List<Waiting> order = Scheduler.order(queue, Map.of("alice", 1), true);
    Plan plan = Scheduler.plan(List.of(host("a", 2, 0, 1), host("b", 1)), queue, running);

    assertThat(order).containsExactly(bob1, alice.get(0), bob2, alice.get(1), alice.get(2));
    assertThat(plan.placed()).containsOnlyKeys(bob1.sessionId(), alice.get(0).sessionId());
  }

  @Test
  void theFirstSessionThatDoesNotFitHoldsUpThoseBehindIt() {
    Waiting pair = waiting("alice", 0, 2);
    Waiting single = waiting("bob", 0, 1);
    Waiting huge = waiting("carol", 9, 8); // no host could ever hold it: it holds up nobody

    Plan plan =
        Scheduler.plan(
            List.of(host("a", 2, 1), host("b", 2)), List.of(pair, single, huge), List.of());

    assertThat(plan.placed()).isEmpty();
    assertThat(plan.waiting().get(huge.sessionId()).reason())
        .isEqualTo("no alive host has 8 devices (the largest has 2)");
    assertThat(plan.waiting().get(pair.sessionId()))
        .isEqualTo(
            new Scheduler.Wait(2, "waiting for 2 free devices on one host (most free now: 1)"));
    assertThat(plan.waiting().get(single.sessionId()))
        .isEqualTo(new Scheduler.Wait(3, "queued behind position 2"));
  }

  @Test
  void spreadTakesTheLeastLoadedHostAndPackTheFullestThatFits() {
    Waiting spread = waiting("alice", 1, 1);
    Waiting pack = packed(waiting("alice", 0, 1));
    List<Host> hosts = List.of(host("a", 4, 0, 1, 2, 3), host("b", 4, 3));

    Plan plan = Scheduler.plan(hosts, List.of(spread, pack), List.of());

    assertThat(plan.placed().get(spread.sessionId()))
        .containsExactly(new Scheduler.Assignment("a", List.of(0)));
    assertThat(plan.placed().get(pack.sessionId()))
        .containsExactly(new Scheduler.Assignment("b", List.of(3)));
  }

  @Test
  void withoutDevicesASessionTakesACpuSlot() {
    Waiting first = waiting("alice", 0, 4);
    Waiting second = waiting("alice", 0, 4);

    Plan plan =
        Scheduler.plan(
            List.of(new Host("cpu", 0, List.of(), 1)), List.of(first, second), List.of());

    assertThat(plan.placed().get(first.sessionId()))
        .containsExactly(new Scheduler.Assignment("cpu", List.of()));
    assertThat(plan.waiting().get(second.sessionId()).reason())
        .startsWith("waiting for a free CPU slot");
  }

  @Test
  void preemptsTheFewestLowerPrioritySessionsThatMakeRoom() {
    Waiting urgent = waiting("alice", 10, 2);
    Running lowA1 = running("bob", "a", 1, 0);
    Running lowA2 = running("bob", "a", 1, 0);
    Running midB = running("bob", "b", 1, 5);
    Running equal = running("carol", "c", 2, 10);
    List<Host> hosts = List.of(host("a", 2), host("b", 2, 1), host("c", 2));

    Plan plan = Scheduler.plan(hosts, List.of(urgent), List.of(lowA1, lowA2, midB, equal));

    // One victim on b beats two on a; a session of equal priority is never preempted.
    assertThat(plan.preemptions())
        .extracting(Scheduler.Preemption::victim)
        .containsExactly(midB.sessionId());
    assertThat(plan.waiting().get(urgent.sessionId()).reason())
        .isEqualTo(
            "preempting lower-priority session " + midB.sessionId() + " (they checkpoint first)");
  }

  @Test
  void doesNotPreemptAgainWhileItsVictimsAreStopping() {
    Waiting urgent = waiting("alice", 10, 1);
    Running victim = new Running(UUID.randomUUID(), "a", 1, 0, "bob", T0, urgent.sessionId());
    Running other = running("bob", "b", 1, 0);

    Plan plan =
        Scheduler.plan(
            List.of(host("a", 1), host("b", 1)), List.of(urgent), List.of(victim, other));

    assertThat(plan.preemptions()).isEmpty();
    assertThat(plan.waiting().get(urgent.sessionId()).reason())
        .isEqualTo(
            "waiting for preempted session " + victim.sessionId() + " to checkpoint and stop");
  }

  @Test
  void noPreemptionWhenNothingOfLowerPriorityWouldMakeRoom() {
    Waiting low = waiting("alice", 0, 1);

    Plan plan =
        Scheduler.plan(List.of(host("a", 1)), List.of(low), List.of(running("bob", "a", 1, 0)));

    assertThat(plan.preemptions()).isEmpty();
    assertThat(plan.waiting().get(low.sessionId()).reason())
        .isEqualTo("waiting for 1 free devices on one host (most free now: 0)");
  }

  @Test
  void withNoHostEverySessionWaitsForAWorker() {
    Waiting w = waiting("alice", 0, 1);

    assertThat(Scheduler.plan(List.of(), List.of(w), List.of()).waiting().get(w.sessionId()))
        .isEqualTo(new Scheduler.Wait(1, "no worker is alive"));
  }

  @Test
  void aGangGetsAllItsNodesAtOnceOnDistinctHostsOrNothing() {
    Waiting pair = gang("alice", 0, 2, 2);
    Waiting trio = gang("bob", 0, 3, 1);
    List<Host> hosts = List.of(host("a", 2, 0, 1), host("b", 2, 0, 1), host("c", 4, 0));

    Plan plan = Scheduler.plan(hosts, List.of(pair, trio), List.of());

    assertThat(plan.placed().get(pair.sessionId()))
        .containsExactly(
            new Scheduler.Assignment("a", List.of(0, 1)),
            new Scheduler.Assignment("b", List.of(0, 1)));
    // Only c has a free device left: the trio holds nothing and waits.
    assertThat(plan.placed()).doesNotContainKey(trio.sessionId());
    assertThat(plan.waiting().get(trio.sessionId()).reason())
        .isEqualTo("waiting for 3 hosts with 1 free devices each (now 1)");
  }

  @Test
  void aGangNoClusterShapeCouldHoldDoesNotHoldUpOthers() {
    Waiting wide = gang("alice", 5, 3, 2);
    Waiting single = waiting("bob", 0, 1);

    Plan plan =
        Scheduler.plan(
            List.of(host("a", 2, 0, 1), host("b", 1, 0)), List.of(wide, single), List.of());

    assertThat(plan.waiting().get(wide.sessionId()).reason())
        .isEqualTo("only 1 alive hosts have 2 devices, for 3 nodes");
    assertThat(plan.placed()).containsKey(single.sessionId());
  }

  @Test
  void aGangPreemptsOnAsManyHostsAsItNeeds() {
    Waiting urgent = gang("alice", 10, 2, 1);
    Running onA = running("bob", "a", 1, 0);
    Running onB = running("bob", "b", 1, 0);
    List<Host> hosts = List.of(host("a", 1), host("b", 1), host("c", 1, 0));

    Plan plan = Scheduler.plan(hosts, List.of(urgent), List.of(onA, onB));

    // c is free: one victim (on a, the lowest host id among equals) makes two hosts.
    assertThat(plan.preemptions())
        .extracting(Scheduler.Preemption::victim)
        .containsExactly(onA.sessionId());
  }

  private Waiting waiting(String owner, int priority, int gpus) {
    return gang(owner, priority, 1, gpus);
  }

  private Waiting gang(String owner, int priority, int nodes, int gpus) {
    return new Waiting(
        UUID.randomUUID(), 1, nodes, gpus, priority, owner, false, T0.plusSeconds(created++));
  }

  private static Waiting packed(Waiting w) {
    return new Waiting(
        w.sessionId(),
        w.attempt(),
        w.nodes(),
        w.gpusPerNode(),
        w.priority(),
        w.owner(),
        true,
        w.createdAt());
  }

  private Running running(String owner, String host, int units, int priority) {
    return new Running(
        UUID.randomUUID(), host, units, priority, owner, T0.plusSeconds(created++), null);
  }

  /** A host with {@code total} devices, of which {@code free} are free. */
  private static Host host(String id, int total, Integer... free) {
    return new Host(id, total, List.of(free), 1);
  }
}
