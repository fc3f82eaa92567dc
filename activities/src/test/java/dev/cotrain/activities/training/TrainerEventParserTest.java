package dev.cotrain.activities.training;

import static org.assertj.core.api.Assertions.assertThat;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;

class TrainerEventParserTest {

  private final TrainerEventParser parser = new TrainerEventParser();

  /** The sample stream a real trainer run produced (docs/schema/sample-stream.jsonl). */
  @Test
  void parsesEveryEventOfTheCheckedInSampleStream() throws IOException {
    List<String> lines = Files.readAllLines(Path.of("../docs/schema/sample-stream.jsonl"));
    List<TrainerEvent> events = lines.stream().map(parser::parse).toList();

    assertThat(events).noneMatch(e -> e instanceof TrainerEvent.LogLine);
    assertThat(events).filteredOn(TrainerEvent.Start.class::isInstance).hasSize(1);
    assertThat(events.get(events.size() - 1)).isInstanceOf(TrainerEvent.Done.class);
    List<TrainerEvent.Step> steps =
        events.stream()
            .filter(TrainerEvent.Step.class::isInstance)
            .map(TrainerEvent.Step.class::cast)
            .toList();
    assertThat(steps).isNotEmpty();
    assertThat(steps).extracting(TrainerEvent.Step::step).isSorted();
    assertThat(steps.get(0).totalSteps()).isPositive();
    assertThat(steps.get(0).batchSize()).isPositive();
    assertThat(events).anyMatch(TrainerEvent.Checkpoint.class::isInstance);
  }

  /** A two-worker DiLoCo run: the start event's world size, the sync and system events. */
  @Test
  void parsesTheCheckedInDilocoStream() throws IOException {
    List<TrainerEvent> events =
        Files.readAllLines(Path.of("../docs/schema/sample-stream-diloco.jsonl")).stream()
            .map(parser::parse)
            .toList();

    assertThat(events).noneMatch(e -> e instanceof TrainerEvent.LogLine);
    assertThat(events)
        .filteredOn(TrainerEvent.Start.class::isInstance)
        .singleElement()
        .extracting(e -> ((TrainerEvent.Start) e).worldSize())
        .isEqualTo(2);
    List<TrainerEvent.Sync> syncs =
        events.stream()
            .filter(TrainerEvent.Sync.class::isInstance)
            .map(TrainerEvent.Sync.class::cast)
            .toList();
    assertThat(syncs).hasSize(4).allMatch(s -> s.participants() == 2 && s.bytes() > 0);
    assertThat(syncs).extracting(TrainerEvent.Sync::outerStep).containsExactly(1L, 2L, 3L, 4L);
    assertThat(events)
        .filteredOn(TrainerEvent.SystemSample.class::isInstance)
        .isNotEmpty()
        .allMatch(e -> ((TrainerEvent.SystemSample) e).rssBytes() > 0);
    assertThat(events.get(events.size() - 1)).isInstanceOf(TrainerEvent.Done.class);
  }

  @Test
  void keepsNonProtocolLinesAsLogLines() {
    assertThat(parser.parse("Traceback (most recent call last):"))
        .isEqualTo(new TrainerEvent.LogLine("Traceback (most recent call last):"));
    assertThat(parser.parse("{not json")).isInstanceOf(TrainerEvent.LogLine.class);
    assertThat(parser.parse("{\"v\": 2, \"event\": \"step\"}"))
        .isInstanceOf(TrainerEvent.LogLine.class);
    assertThat(parser.parse("[1, 2]")).isInstanceOf(TrainerEvent.LogLine.class);
  }

  @Test
  void mapsErrorAndDoneEvents() {
    assertThat(
            parser.parse(
                "{\"v\":1,\"event\":\"error\",\"kind\":\"config\",\"message\":\"model.size: bad\","
                    + "\"retryable\":false}"))
        .isEqualTo(new TrainerEvent.Error("config", "model.size: bad", false));
    assertThat(
            parser.parse(
                "{\"v\":1,\"event\":\"done\",\"step\":5,\"loss\":1.5,\"final_path\":\"/f\","
                    + "\"eval_loss\":1.6}"))
        .isEqualTo(new TrainerEvent.Done(5, 1.5, "/f", null, null, null));
    assertThat(
            parser.parse(
                "{\"v\":1,\"event\":\"done\",\"step\":5,\"loss\":1.5,\"final_path\":\"/f\","
                    + "\"parameters\":42,\"data_fingerprint\":\"sha256:d\","
                    + "\"validation_path\":\"/s/v\"}"))
        .isEqualTo(new TrainerEvent.Done(5, 1.5, "/f", 42L, "sha256:d", "/s/v"));
    assertThat(
            parser.parse(
                "{\"v\":1,\"event\":\"checkpoint_deleted\",\"step\":10,\"path\":\"/c/10\"}"))
        .isEqualTo(new TrainerEvent.CheckpointDeleted(10, "/c/10"));
    assertThat(parser.parse("{\"v\":1,\"event\":\"eval\",\"loss\":1.0}"))
        .isInstanceOf(TrainerEvent.Other.class);
    assertThat(
            parser.parse(
                "{\"v\":1,\"event\":\"system\",\"cpu_percent\":150.0,\"rss_bytes\":7,"
                    + "\"disk_read_bytes\":1,\"disk_write_bytes\":2,\"net_sent_bytes\":3,"
                    + "\"net_recv_bytes\":4,\"gpus\":[{\"index\":0,\"utilization\":null,"
                    + "\"memory_used_bytes\":5,\"memory_total_bytes\":6}]}"))
        .isEqualTo(
            new TrainerEvent.SystemSample(
                150.0, 7L, 1L, 2L, 3L, 4L, List.of(new TrainerEvent.Gpu(0, null, 5, 6))));
  }
}
