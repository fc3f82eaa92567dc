package dev.cotrain.api.error;

import java.util.List;
import org.springframework.http.HttpStatus;

/** An expected failure that the API answers with {@code status} and an {@link ApiError} body. */
public class ApiException extends RuntimeException {

  static final String VALIDATION_FAILED = "validation failed";

  private final HttpStatus status;
  private final ApiError body;

  public ApiException(HttpStatus status, String error) {
    this(status, ApiError.of(status, error, null));
  }

  private ApiException(HttpStatus status, ApiError body) {
    super(body.detail());
    this.status = status;
    this.body = body;
  }

  /** A 400 naming one request field (a query parameter, a path variable or a body field). */
  public static ApiException badField(String field, String message) {
    return new ApiException(
        HttpStatus.BAD_REQUEST,
        ApiError.of(
            HttpStatus.BAD_REQUEST,
            VALIDATION_FAILED,
            null,
            List.of(new ApiError.FieldMessage(field, message))));
  }

  public static ApiException notFound(String error) {
    return new ApiException(HttpStatus.NOT_FOUND, error);
  }

  HttpStatus status() {
    return status;
  }

  ApiError body() {
    return body;
  }
}
