package dev.cotrain.api.error;

import com.fasterxml.jackson.annotation.JsonIgnore;
import java.util.List;
import org.springframework.http.HttpStatus;
import org.springframework.http.HttpStatusCode;

/**
 * The body of every error response, {@code application/problem+json} (RFC 9457): {@code type}
 * (always {@code about:blank}: the status says what kind of error it is), {@code title} (the
 * status's reason phrase), {@code status}, {@code detail} (what went wrong, for a person), {@code
 * instance} (the request's path), and the extension {@code fields}: every bad request field with
 * its message, empty unless the error is about particular fields.
 */
public record ApiError(
    String type,
    String title,
    int status,
    String detail,
    String instance,
    List<FieldMessage> fields) {

  /** {@code field} is the JSON path with dots, e.g. {@code modelConfig.size}. */
  public record FieldMessage(String field, String message) {}

  public static ApiError of(HttpStatusCode status, String detail, String instance) {
    return of(status, detail, instance, List.of());
  }

  public static ApiError of(
      HttpStatusCode status, String detail, String instance, List<FieldMessage> fields) {
    HttpStatus known = HttpStatus.resolve(status.value());
    return new ApiError(
        "about:blank",
        known == null ? "Error" : known.getReasonPhrase(),
        status.value(),
        detail,
        instance,
        List.copyOf(fields));
  }

  /** The same error about the request at {@code instance}. */
  @JsonIgnore
  ApiError at(String instance) {
    return new ApiError(type, title, status, detail, instance, fields);
  }
}
