package dev.cotrain.activities.placement;

import java.time.Instant;
import java.util.ArrayDeque;
import java.util.ArrayList;
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
 * orders the waiting sessions, places them in that order while they fit, stops at the first one
 * that does not (no later session jumps ahead of it), and for that one chooses lower-priority
 * sessions to preempt when that makes it fit.
 *
 * <p>The order: higher priority first; within a priority, the session of the owner who holds the
 * least (devices, or CPU slots in a cluster without devices, counting what this order has already
 * handed out), then the earliest created.
 */
final class Scheduler {

  /** What one alive host has: all its device ids, the free ones, and its free CPU slots. */
  record Host(String id, int totalDevices, List<Integer> freeDevices, int freeCpuSlots) {}

  /** A waiting session, asking for {@code gpusPerNode} devices on one host. */
  record Waiting(
      UUID sessionId,
      int attempt,
      int gpusPerNode,
      int priority,
      String owner,
      boolean pack,
      Instant createdAt) {}

  /**
   * A placement that holds {@code units} (devices, or 1 for a CPU slot) on {@code hostId}; {@code
   * preemptedFor} is the waiting session it is being preempted for, if any.
   */
  record Running(
      UUID sessionId,
      String hostId,
      int units,
      int priority,
      String owner,
      Instant placedAt,
      UUID preemptedFor) {}

  /** A decision for a waiting session: placed now, or its position (from 1) and the reason. */
  record Assignment(String hostId, List<Integer> devices) {}

  record Wait(int position, String reason) {}

  record Preemption(UUID victim, UUID forSession, String reason) {}

  record Plan(
      Map<UUID, Assignment> placed, Map<UUID, Wait> waiting, List<Preemption> preemptions) {}

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
    Map<UUID, Assignment> placed = new LinkedHashMap<>();
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
      Free chosen = fit(w, free.values(), devices);
      if (chosen != null) {
        placed.put(w.sessionId(), chosen.take(devices ? w.gpusPerNode() : 0));
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
        usage.merge(w.owner(), devices ? w.gpusPerNode() : 1, Integer::sum);
        if (!q.isEmpty()) {
          next.add(q);
        }
      }
    }
    return ordered;
  }

  /**
   * The host for {@code w}: among those with room, the one with the most free (spread: the least
   * loaded), or with a pack request the one with the least free that still fits; ties go to the
   * lowest host id.
   */
  private static Free fit(Waiting w, Iterable<Free> hosts, boolean devices) {
    Free best = null;
    for (Free h : hosts) {
      int room = h.room(devices);
      if (room < (devices ? w.gpusPerNode() : 1)) {
        continue;
      }
      if (best == null || (w.pack() ? room < best.room(devices) : room > best.room(devices))) {
        best = h;
      }
    }
    return best;
  }

  private static String neverFits(Waiting w, List<Host> hosts, boolean devices) {
    if (!devices) {
      return null;
    }
    int largest = hosts.stream().mapToInt(Host::totalDevices).max().orElse(0);
    return w.gpusPerNode() > largest
        ? "no alive host has " + w.gpusPerNode() + " devices (the largest has " + largest + ")"
        : null;
  }

  private static String waitReason(Waiting w, Map<String, Free> free, boolean devices) {
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
   * enough, it waits for them; else, if stopping running sessions of lower priority makes it fit on
   * some host, those are chosen (the fewest, the lowest priority, the most recently placed first,
   * since they lose the least work) and added to {@code preemptions}. Answers the reason it waits.
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
    if (!pending.isEmpty() && room.values().stream().anyMatch(n -> n >= need)) {
      return "waiting for preempted " + ids(pending) + " to checkpoint and stop";
    }
    List<Running> best = null;
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
      if (have >= need && !victims.isEmpty() && (best == null || cheaper(victims, best))) {
        best = victims;
      }
    }
    if (best == null) {
      return pending.isEmpty()
          ? otherwise
          : "waiting for preempted " + ids(pending) + " to checkpoint and stop";
    }
    for (Running r : best) {
      preemptions.add(
          new Preemption(
              r.sessionId(),
              w.sessionId(),
              "preempted for session "
                  + w.sessionId()
                  + " (priority "
                  + w.priority()
                  + " over "
                  + r.priority()
                  + ")"));
    }
    return "preempting lower-priority " + ids(best) + " (they checkpoint first)";
  }

  private static boolean cheaper(List<Running> a, List<Running> b) {
    if (a.size() != b.size()) {
      return a.size() < b.size();
    }
    int maxA = a.stream().mapToInt(Running::priority).max().orElse(0);
    int maxB = b.stream().mapToInt(Running::priority).max().orElse(0);
    return maxA < maxB;
  }

  private static String ids(List<Running> sessions) {
    return (sessions.size() == 1 ? "session " : "sessions ")
        + sessions.stream().map(r -> r.sessionId().toString()).collect(Collectors.joining(", "));
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
