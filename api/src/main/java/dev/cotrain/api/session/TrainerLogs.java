package dev.cotrain.api.session;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.UUID;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.stereotype.Component;

/**
 * The end of a trainer's log (its stderr: the log lines it prints and any traceback), as the
 * workers write it under the storage root's {@code logs/training/<session id>/}: {@code
 * trainer.log} for node 0, {@code trainer-node<N>.log} for the other nodes of a session.
 */
@Component
class TrainerLogs {

  /** At most this much of the file's end is read, however few lines it holds. */
  static final int MAX_BYTES = 1 << 20;

  /** Longer lines are cut to this many characters (and end with an ellipsis). */
  static final int MAX_LINE = 2_000;

  private final Path trainingLogs;

  TrainerLogs(@Value("${cotrain.storage-root}") Path storageRoot) {
    this.trainingLogs = storageRoot.resolve("logs/training");
  }

  /** The last {@code lines} lines of node {@code node}'s log; empty when it wrote none yet. */
  List<String> tail(UUID sessionId, int node, int lines) throws IOException {
    Path file =
        trainingLogs
            .resolve(sessionId.toString())
            .resolve(node == 0 ? "trainer.log" : "trainer-node" + node + ".log");
    try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ)) {
      long size = channel.size();
      long start = Math.max(0, size - MAX_BYTES);
      ByteBuffer buffer = ByteBuffer.allocate((int) (size - start));
      while (buffer.hasRemaining() && channel.read(buffer, start + buffer.position()) > 0) {
        // reads until the end seen at open
      }
      buffer.flip();
      String text =
          StandardCharsets.UTF_8
              .newDecoder()
              .onMalformedInput(CodingErrorAction.REPLACE)
              .onUnmappableCharacter(CodingErrorAction.REPLACE)
              .decode(buffer)
              .toString();
      List<String> all = new ArrayList<>(List.of(text.split("\r?\n", -1)));
      if (!all.isEmpty() && all.get(all.size() - 1).isEmpty()) {
        all.remove(all.size() - 1); // the file ends with a newline
      }
      if (start > 0 && !all.isEmpty()) {
        all.remove(0); // the first line read is only the end of a line
      }
      List<String> tail = new ArrayList<>();
      for (String line : all.subList(Math.max(0, all.size() - lines), all.size())) {
        tail.add(line.length() > MAX_LINE ? line.substring(0, MAX_LINE) + "…" : line);
      }
      return tail;
    } catch (NoSuchFileException e) {
      return List.of();
    }
  }
}
