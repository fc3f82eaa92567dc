package dev.cotrain.activities.config;

import dev.cotrain.activities.storage.StorageLayout;
import dev.cotrain.workflows.session.ConfigActivities;
import dev.cotrain.workflows.session.ConfigActivities.ConfigVerdict;
import dev.cotrain.workflows.session.FailureTypes;
import io.temporal.failure.ApplicationFailure;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;

public class ConfigActivitiesImpl implements ConfigActivities {

  private final StorageLayout layout;
  private final TomlConfigWriter writer;
  private final ConfigChecker checker;

  public ConfigActivitiesImpl(StorageLayout layout, ConfigChecker checker) {
    this.layout = layout;
    this.writer = new TomlConfigWriter(layout);
    this.checker = checker;
  }

  @Override
  public ConfigVerdict checkConfig(GenerateConfigInput input) {
    try {
      // The very text generateConfig would write, so the trainer judges what it would get.
      return checker.check(writer.render(input.sessionId(), input.spec()));
    } catch (InvalidConfigException | IllegalArgumentException e) {
      return ConfigVerdict.refused(e.getMessage());
    }
  }

  @Override
  public GeneratedConfig generateConfig(GenerateConfigInput input) {
    String text;
    try {
      text = writer.render(input.sessionId(), input.spec());
    } catch (InvalidConfigException | IllegalArgumentException e) {
      throw ApplicationFailure.newNonRetryableFailure(e.getMessage(), FailureTypes.CONFIG_ERROR);
    }
    Path target = layout.generatedConfig(input.sessionId());
    try {
      Files.createDirectories(target.getParent());
      // Write then rename, so the trainer never reads a half-written config.
      Path temp = Files.createTempFile(target.getParent(), input.sessionId(), ".toml.tmp");
      Files.writeString(temp, text, StandardCharsets.UTF_8);
      Files.move(temp, target, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    } catch (IOException e) {
      throw new UncheckedIOException(e);
    }
    return new GeneratedConfig(target.toString(), layout.checkpoints(input.sessionId()).toString());
  }
}
