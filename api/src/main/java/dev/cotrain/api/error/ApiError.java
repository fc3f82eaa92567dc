package dev.cotrain.api.error;

import java.util.List;

/**
 * The body of every error response: {@code {"error": "...", "fields": [{"field": "...", "message":
 * "..."}]}}. {@code fields} is empty unless the error is about particular request fields.
 */
public record ApiError(String error, List<FieldMessage> fields) {

  /** {@code field} is the JSON path with dots, e.g. {@code modelConfig.size}. */
  public record FieldMessage(String field, String message) {}

  public static ApiError of(String error) {
    return new ApiError(error, List.of());
  }

  public static ApiError validation(List<FieldMessage> fields) {
    return new ApiError(ApiException.VALIDATION_FAILED, List.copyOf(fields));
  }
}
