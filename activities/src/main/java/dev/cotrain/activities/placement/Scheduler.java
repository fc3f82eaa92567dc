package dev.cotrain.activities.placement;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.PriorityQueue;
import java.util.TreeMap;
import java.util.UUID;
import java.util.stream.Collectors;

/**
 * One pass of the allocator over the whole queue, without the database (docs/placement.md): it
 * orders the waiting sessions, places them in that order while they fit (all nodes of a session at
 * once, each on its own host), stops at the first one that does not (no later session jumps ahead
 * of it), and for that one chooses lower-priority sessions to preempt when that makes it fit.
 *
 * <p>The order: higher priority first; within a priority, the session of the owner who holds the
 * least (devices, or CPU slots in a cluster without devices, counting what this order has already
 * handed out), then the earliest created.
 */
final class Scheduler {

  /** What one alive host has: all its device ids, the free ones, and its free CPU slots. */
  record Host(String id, int totalDevices, List<Integer> freeDevices, int freeCpuSlots) {}

  /** A waiting session, asking for {@code gpusPerNode} devices on each of {@code nodes} hosts. */
  record Waiting(
      UUID sessionId,
      int attempt,
      int nodes,
      int gpusPerNode,
      int priority,
      String owner,
      boolean pack,
      Instant createdAt) {}

  /**
   * One node of a placement: it holds {@code units} (devices, or 1 for a CPU slot) on {@code
   * hostId}; {@code preemptedFor} is the waiting session its session is being preempted for.
   */
  record Running(
      UUID sessionId,
      String hostId,
      int units,
      int priority,
      String owner,
      Instant placedAt,
      UUID preemptedFor) {}

  /** One node of a decision: its host and the devices it holds there (none for a CPU slot). */
  record Assignment(String hostId, List<Integer> devices) {}

  record Wait(int position, String reason) {}

  record Preemption(UUID victim, UUID forSession, String reason) {}

  /** Who was placed (their nodes, node 0 first), who waits where and why, whom to preempt. */
  record Plan(
      Map<UUID, List<Assignment>> placed, Map<UUID, Wait> waiting, List<Preemption> preemptions) {}

  private Scheduler() {}

  static Plan plan(List<Host> hosts, List<Waiting> queue, List<Running> running) {
    boolean devices = hosts.stream().anyMatch(h -> h.totalDevices() > 0);
    Map<String, Integer> usage = new HashMap<>();
    for (Running r : running) {
      usage.merge(r.owner(), r.units(), Integer::sum);
    }
    Map<String, Free> free = new LinkedHashMap<>();
    for (Host h : hosts) {
      free.put(h.id(), new Free(h, new ArrayList<>(h.freeDevices()), h.freeCpuSlots()));
    }
    Map<UUID, List<Assignment>> placed = new LinkedHashMap<>();
    Map<UUID, Wait> waiting = new LinkedHashMap<>();
    List<Preemption> preemptions = new ArrayList<>();
    Integer blockedAt = null;
    int position = 0;
    for (Waiting w : order(queue, usage, devices)) {
      if (hosts.isEmpty()) {
        waiting.put(w.sessionId(), new Wait(++position, "no worker is alive"));
        continue;
      }
      if (blockedAt != null) {
        waiting.put(w.sessionId(), new Wait(++position, "queued behind position " + blockedAt));
        continue;
      }
      List<Free> chosen = fit(w, free.values(), devices);
      if (chosen != null) {
        placed.put(
            w.sessionId(),
            chosen.stream().map(h -> h.take(devices ? w.gpusPerNode() : 0)).toList());
        continue;
      }
      position++;
      String never = neverFits(w, hosts, devices);
      if (never != null) {
        waiting.put(w.sessionId(), new Wait(position, never)); // does not hold up the others
        continue;
      }
      blockedAt = position;
      waiting.put(
          w.sessionId(),
          new Wait(
              position,
              preempt(w, free, running, devices, preemptions, waitReason(w, free, devices))));
    }
    return new Plan(placed, waiting, preemptions);
  }

  /** The queue in scheduling order (see the class comment). */
  static List<Waiting> order(List<Waiting> queue, Map<String, Integer> held, boolean devices) {
    Map<String, Integer> usage = new HashMap<>(held);
    TreeMap<Integer, Map<String, Deque<Waiting>>> byPriority =
        new TreeMap<>(Comparator.reverseOrder());
    List<Waiting> sorted =
        queue.stream()
            .sorted(Comparator.comparing(Waiting::createdAt).thenComparing(Waiting::sessionId))
            .toList();
    for (Waiting w : sorted) {
      byPriority
          .computeIfAbsent(w.priority(), p -> new LinkedHashMap<>())
          .computeIfAbsent(w.owner(), o -> new ArrayDeque<>())
          .add(w);
    }
    List<Waiting> ordered = new ArrayList<>(queue.size());
    for (Map<String, Deque<Waiting>> owners : byPriority.values()) {
      // The owner holding least goes next; among equals, the one whose next session is oldest.
      PriorityQueue<Deque<Waiting>> next =
          new PriorityQueue<>(
              Comparator.<Deque<Waiting>>comparingInt(
                      q -> usage.getOrDefault(q.peekFirst().owner(), 0))
                  .thenComparing(q -> q.peekFirst().createdAt())
                  .thenComparing(q -> q.peekFirst().sessionId()));
      next.addAll(owners.values());
      while (!next.isEmpty()) {
        Deque<Waiting> q = next.poll();
        Waiting w = q.pollFirst();
        ordered.add(w);
        usage.merge(w.owner(), w.nodes() * (devices ? w.gpusPerNode() : 1), Integer::sum);
        if (!q.isEmpty()) {
          next.add(q);
        }
      }
    }
    return ordered;
  }

  /**
   * The hosts for {@code w}'s nodes, node 0 first: among those with room, the ones with the most
   * free (spread: the least loaded), or with a pack request the ones with the least free that still
   * fit; ties go to the lowest host id. Null when fewer than {@code nodes} hosts have room.
   */
  private static List<Free> fit(Waiting w, Collection<Free> hosts, boolean devices) {
    int need = devices ? w.gpusPerNode() : 1;
    Comparator<Free> byRoom = Comparator.comparingInt(h -> h.room(devices));
    List<Free> fitting =
        hosts.stream()
            .filter(h -> h.room(devices) >= need)
            .sorted(w.pack() ? byRoom : byRoom.reversed()) // stable: ties keep host id order
            .limit(w.nodes())
            .toList();
    return fitting.size() < w.nodes() ? null : fitting;
  }

  private static String neverFits(Waiting w, List<Host> hosts, boolean devices) {
    if (!devices) {
      return hosts.size() >= w.nodes()
          ? null
          : "only " + hosts.size() + " alive hosts for " + w.nodes() + " nodes";
    }
    long big = hosts.stream().filter(h -> h.totalDevices() >= w.gpusPerNode()).count();
    if (big >= w.nodes()) {
      return null;
    }
    if (w.nodes() == 1) {
      int largest = hosts.stream().mapToInt(Host::totalDevices).max().orElse(0);
      return "no alive host has " + w.gpusPerNode() + " devices (the largest has " + largest + ")";
    }
    return "only "
        + big
        + " alive hosts have "
        + w.gpusPerNode()
        + " devices, for "
        + w.nodes()
        + " nodes";
  }

  private static String waitReason(Waiting w, Map<String, Free> free, boolean devices) {
    int need = devices ? w.gpusPerNode() : 1;
    if (w.nodes() > 1) {
      long ready = free.values().stream().filter(f -> f.room(devices) >= need).count();
      return devices
          ? "waiting for "
              + w.nodes()
              + " hosts with "
              + need
              + " free devices each (now "
              + ready
              + ")"
          : "waiting for " + w.nodes() + " hosts with a free CPU slot each (now " + ready + ")";
    }
    if (!devices) {
      return "waiting for a free CPU slot (every alive worker's slots are in use)";
    }
    int mostFree = free.values().stream().mapToInt(f -> f.devices.size()).max().orElse(0);
    return "waiting for "
        + w.gpusPerNode()
        + " free devices on one host (most free now: "
        + mostFree
        + ")";
  }

  /**
   * For the first session that does not fit: when sessions already being preempted for it will free
   * enough, it waits for them; else, if stopping running sessions of lower priority makes room on
   * enough hosts, those are chosen (per host the fewest, the lowest priority, the most recently
   * placed first, since they lose the least work; then the cheapest hosts) and added to {@code
   * preemptions}. Answers the reason it waits.
   */
  private static String preempt(
      Waiting w,
      Map<String, Free> free,
      List<Running> running,
      boolean devices,
      List<Preemption> preemptions,
      String otherwise) {
    int need = devices ? w.gpusPerNode() : 1;
    Map<String, Integer> room = new LinkedHashMap<>(); // host id order: ties go to the lowest
    free.forEach((id, f) -> room.put(id, f.room(devices)));
    List<Running> pending =
        running.stream().filter(r -> w.sessionId().equals(r.preemptedFor())).toList();
    for (Running r : pending) {
      room.computeIfPresent(r.hostId(), (h, n) -> n + r.units());
    }
    String waitForPending =
        "waiting for preempted " + ids(sessions(pending)) + " to checkpoint and stop";
    if (!pending.isEmpty() && room.values().stream().filter(n -> n >= need).count() >= w.nodes()) {
      return waitForPending;
    }
    // For each host that can get room for a node: the victims it takes there (none if it has room).
    List<List<Running>> options = new ArrayList<>();
    for (Map.Entry<String, Integer> host : room.entrySet()) {
      List<Running> candidates =
          running.stream()
              .filter(
                  r ->
                      r.hostId().equals(host.getKey())
                          && r.preemptedFor() == null
                          && r.priority() < w.priority())
              .sorted(
                  Comparator.comparingInt(Running::priority)
                      .thenComparing(Running::placedAt, Comparator.reverseOrder()))
              .toList();
      int have = host.getValue();
      List<Running> victims = new ArrayList<>();
      for (Running r : candidates) {
        if (have >= need) {
          break;
        }
        victims.add(r);
        have += r.units();
      }
      if (have >= need) {
        options.add(victims);
      }
    }
    if (options.size() < w.nodes()) {
      return pending.isEmpty() ? otherwise : waitForPending;
    }
    options.sort(Scheduler::cost); // stable: equal costs keep host id order
    List<UUID> victims =
        sessions(options.subList(0, w.nodes()).stream().flatMap(List::stream).toList());
    Map<UUID, Integer> priorities = new HashMap<>();
    running.forEach(r -> priorities.put(r.sessionId(), r.priority()));
    for (UUID victim : victims) {
      preemptions.add(
          new Preemption(
              victim,
              w.sessionId(),
              "preempted for session "
                  + w.sessionId()
                  + " (priority "
                  + w.priority()
                  + " over "
                  + priorities.get(victim)
                  + ")"));
    }
    return "preempting lower-priority " + ids(victims) + " (they checkpoint first)";
  }

  /** Fewer victims first, then victims of lower priority. */
  private static int cost(List<Running> a, List<Running> b) {
    if (a.size() != b.size()) {
      return Integer.compare(a.size(), b.size());
    }
    return Integer.compare(
        a.stream().mapToInt(Running::priority).max().orElse(Integer.MIN_VALUE),
        b.stream().mapToInt(Running::priority).max().orElse(Integer.MIN_VALUE));
  }

  /** The distinct sessions of these nodes, in order. */
  private static List<UUID> sessions(List<Running> nodes) {
    return nodes.stream().map(Running::sessionId).distinct().toList();
  }

  private static String ids(List<UUID> sessions) {
    return (sessions.size() == 1 ? "session " : "sessions ")
        + sessions.stream().map(UUID::toString).collect(Collectors.joining(", "));
  }

  /** What a pass has not yet handed out on one host. */
  private static final class Free {
    final Host host;
    final List<Integer> devices;
    int cpuSlots;

    Free(Host host, List<Integer> devices, int cpuSlots) {
      this.host = host;
      this.devices = devices;
      this.cpuSlots = cpuSlots;
    }

    int room(boolean devicesMode) {
      return devicesMode ? devices.size() : cpuSlots;
    }

    /** The lowest free {@code count} devices, or a CPU slot when {@code count} is 0. */
    Assignment take(int count) {
      if (count == 0) {
        cpuSlots--;
        return new Assignment(host.id(), List.of());
      }
      List<Integer> taken = List.copyOf(devices.subList(0, count));
      devices.subList(0, count).clear();
      return new Assignment(host.id(), taken);
    }
  }
}
