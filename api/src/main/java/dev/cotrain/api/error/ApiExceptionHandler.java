package dev.cotrain.api.error;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.exc.StreamReadException;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.exc.MismatchedInputException;
import com.fasterxml.jackson.databind.exc.UnrecognizedPropertyException;
import dev.cotrain.api.error.ApiError.FieldMessage;
import jakarta.servlet.http.HttpServletRequest;
import java.util.Comparator;
import java.util.List;
import java.util.UUID;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.core.MethodParameter;
import org.springframework.http.HttpStatus;
import org.springframework.http.HttpStatusCode;
import org.springframework.http.MediaType;
import org.springframework.http.ResponseEntity;
import org.springframework.http.converter.HttpMessageNotReadableException;
import org.springframework.web.ErrorResponse;
import org.springframework.web.bind.MethodArgumentNotValidException;
import org.springframework.web.bind.MissingServletRequestParameterException;
import org.springframework.web.bind.annotation.ExceptionHandler;
import org.springframework.web.bind.annotation.PathVariable;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.RestControllerAdvice;
import org.springframework.web.method.annotation.HandlerMethodValidationException;
import org.springframework.web.method.annotation.MethodArgumentTypeMismatchException;

/**
 * Turns every failure into an {@link ApiError} body ({@code application/problem+json}); no stack
 * trace ever reaches a client.
 */
@RestControllerAdvice
class ApiExceptionHandler {

  private final HttpServletRequest request;

  ApiExceptionHandler(HttpServletRequest request) {
    this.request = request;
  }

  private static final Logger log = LoggerFactory.getLogger(ApiExceptionHandler.class);

  @ExceptionHandler(ApiException.class)
  ResponseEntity<ApiError> api(ApiException e) {
    return problem(e.body().at(request.getRequestURI()));
  }

  @ExceptionHandler(MethodArgumentNotValidException.class)
  ResponseEntity<ApiError> invalid(MethodArgumentNotValidException e) {
    List<FieldMessage> fields =
        e.getBindingResult().getFieldErrors().stream()
            .map(error -> new FieldMessage(error.getField(), error.getDefaultMessage()))
            .distinct()
            .sorted(Comparator.comparing(FieldMessage::field).thenComparing(FieldMessage::message))
            .toList();
    return badRequest(fields);
  }

  /** A query parameter or path variable that breaks its constraint annotation. */
  @ExceptionHandler(HandlerMethodValidationException.class)
  ResponseEntity<ApiError> invalidParameters(HandlerMethodValidationException e) {
    List<FieldMessage> fields =
        e.getParameterValidationResults().stream()
            .flatMap(
                result ->
                    result.getResolvableErrors().stream()
                        .map(
                            error ->
                                new FieldMessage(
                                    parameterName(result.getMethodParameter()),
                                    error.getDefaultMessage())))
            .distinct()
            .sorted(Comparator.comparing(FieldMessage::field).thenComparing(FieldMessage::message))
            .toList();
    return badRequest(fields);
  }

  /** The name a client uses: a {@code @RequestParam}'s or {@code @PathVariable}'s, else Java's. */
  private static String parameterName(MethodParameter parameter) {
    RequestParam param = parameter.getParameterAnnotation(RequestParam.class);
    if (param != null && !param.name().isEmpty()) {
      return param.name();
    }
    PathVariable path = parameter.getParameterAnnotation(PathVariable.class);
    if (path != null && !path.name().isEmpty()) {
      return path.name();
    }
    return String.valueOf(parameter.getParameterName());
  }

  @ExceptionHandler(HttpMessageNotReadableException.class)
  ResponseEntity<ApiError> unreadable(HttpMessageNotReadableException e) {
    Throwable cause = e.getCause();
    if (cause instanceof StrictJsonConfig.NulInText nul) {
      String field = path(nul);
      return badRequest(
          List.of(new FieldMessage(field.isEmpty() ? "body" : field, StrictJsonConfig.NUL)));
    }
    if (cause instanceof UnrecognizedPropertyException unknown) {
      return badRequest(List.of(new FieldMessage(path(unknown), "unknown property")));
    }
    if (cause instanceof MismatchedInputException mismatch && mismatch.getTargetType() != null) {
      String field = path(mismatch);
      return badRequest(
          List.of(
              new FieldMessage(
                  field.isEmpty() ? "body" : field,
                  "must be " + describe(mismatch.getTargetType()))));
    }
    if (cause instanceof JsonProcessingException json) {
      String field = path(json);
      return badRequest(
          List.of(
              new FieldMessage(
                  field.isEmpty() ? "body" : field,
                  "malformed JSON: " + json.getOriginalMessage())));
    }
    return badRequest(List.of(new FieldMessage("body", "must be a JSON object")));
  }

  @ExceptionHandler(MethodArgumentTypeMismatchException.class)
  ResponseEntity<ApiError> typeMismatch(MethodArgumentTypeMismatchException e) {
    Class<?> type = e.getRequiredType();
    return badRequest(
        List.of(
            new FieldMessage(e.getName(), "must be " + (type == null ? "valid" : describe(type)))));
  }

  @ExceptionHandler(MissingServletRequestParameterException.class)
  ResponseEntity<ApiError> missingParameter(MissingServletRequestParameterException e) {
    return badRequest(List.of(new FieldMessage(e.getParameterName(), "is required")));
  }

  @ExceptionHandler(Exception.class)
  ResponseEntity<ApiError> unexpected(Exception e) {
    if (e instanceof ErrorResponse known) {
      // Spring MVC's own client errors (405, 406, 415, unknown path): keep their status.
      HttpStatusCode status = known.getStatusCode();
      HttpStatus resolved = HttpStatus.resolve(status.value());
      String reason =
          resolved == null ? "request failed" : resolved.getReasonPhrase().toLowerCase();
      return problem(ApiError.of(status, reason, request.getRequestURI()));
    }
    log.error("Unexpected failure while handling a request", e);
    return problem(
        ApiError.of(HttpStatus.INTERNAL_SERVER_ERROR, "internal error", request.getRequestURI()));
  }

  private ResponseEntity<ApiError> badRequest(List<FieldMessage> fields) {
    return problem(
        ApiError.of(
            HttpStatus.BAD_REQUEST,
            ApiException.VALIDATION_FAILED,
            request.getRequestURI(),
            fields));
  }

  private static ResponseEntity<ApiError> problem(ApiError body) {
    return ResponseEntity.status(body.status())
        .contentType(MediaType.APPLICATION_PROBLEM_JSON)
        .body(body);
  }

  /** The JSON path with dots ({@code trainingConfig.batchSize}), {@code ""} at the top level. */
  static String path(JsonProcessingException e) {
    if (e instanceof JsonMappingException mapping) {
      StringBuilder path = new StringBuilder();
      for (JsonMappingException.Reference ref : mapping.getPath()) {
        if (ref.getFieldName() != null) {
          if (!path.isEmpty()) {
            path.append('.');
          }
          path.append(ref.getFieldName());
        } else if (ref.getIndex() >= 0) {
          path.append('[').append(ref.getIndex()).append(']');
        }
      }
      return path.toString();
    }
    if (e instanceof StreamReadException read && read.getProcessor() != null) {
      JsonParser parser = read.getProcessor();
      // A syntax error has no mapping path; the parser knows where it was.
      String pointer = parser.getParsingContext().pathAsPointer().toString();
      return pointer.isEmpty() ? "" : pointer.substring(1).replace('/', '.');
    }
    return "";
  }

  private static String describe(Class<?> type) {
    if (type == Integer.class || type == int.class || type == Long.class || type == long.class) {
      return "an integer";
    }
    if (Number.class.isAssignableFrom(type) || type == double.class || type == float.class) {
      return "a number";
    }
    if (type == String.class) {
      return "a string";
    }
    if (type == Boolean.class || type == boolean.class) {
      return "true or false";
    }
    if (type == UUID.class) {
      return "a UUID";
    }
    if (type.isArray() || List.class.isAssignableFrom(type)) {
      return "an array";
    }
    return "an object";
  }
}
