package dev.cotrain.activities.config;

/** A spec that cannot become a safe config; the message names the key. */
final class InvalidConfigException extends RuntimeException {
  InvalidConfigException(String message) {
    super(message);
  }
}
