package dev.cotrain.api.openapi;

import dev.cotrain.api.error.ApiError;
import dev.cotrain.workflows.session.SessionStatus;
import io.swagger.v3.core.converter.ModelConverters;
import io.swagger.v3.oas.models.Components;
import io.swagger.v3.oas.models.OpenAPI;
import io.swagger.v3.oas.models.Operation;
import io.swagger.v3.oas.models.PathItem;
import io.swagger.v3.oas.models.media.Content;
import io.swagger.v3.oas.models.media.MediaType;
import io.swagger.v3.oas.models.media.Schema;
import io.swagger.v3.oas.models.parameters.Parameter;
import io.swagger.v3.oas.models.responses.ApiResponse;
import io.swagger.v3.oas.models.responses.ApiResponses;
import io.swagger.v3.oas.models.security.SecurityRequirement;
import io.swagger.v3.oas.models.security.SecurityScheme;
import jakarta.validation.constraints.NotBlank;
import java.lang.annotation.Annotation;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Deque;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import org.springdoc.core.customizers.OpenApiCustomizer;
import org.springdoc.core.customizers.OperationCustomizer;
import org.springdoc.core.customizers.PropertyCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.core.DefaultParameterNameDiscoverer;
import org.springframework.core.MethodParameter;
import org.springframework.http.HttpStatus;
import org.springframework.lang.Nullable;
import org.springframework.web.bind.annotation.RequestParam;
import org.springframework.web.bind.annotation.ValueConstants;

/**
 * Makes the generated OpenAPI document say exactly what the API does: the bearer token every {@code
 * /api} operation needs, every error status each operation can answer (all as {@code
 * application/problem+json}), which response fields may be null ({@link Nullable} on the record
 * component) and that every response field is always present.
 */
@Configuration(proxyBeanMethods = false)
class OpenApiConfig {

  static final String PROBLEM = "Problem";
  static final String BEARER = "bearer";

  /** Marks a {@code @NotBlank} property until {@link #exactResponses()} sets its minLength. */
  private static final String NOT_BLANK = "x-cotrain-not-blank";

  /**
   * A property annotated {@link Nullable} admits null: {@code type: [T, "null"]}; one annotated
   * {@link NotBlank} has at least one character.
   */
  @Bean
  PropertyCustomizer nullableProperties() {
    return (property, type) -> {
      Annotation[] annotations = type.getCtxAnnotations();
      if (annotations == null || property == null) {
        return property;
      }
      for (Annotation annotation : annotations) {
        if (annotation instanceof NotBlank) {
          property.addExtension(NOT_BLANK, true); // minLength 1, once the generator is done
        }
      }
      for (Annotation annotation : annotations) {
        if (annotation instanceof Nullable) {
          return nullable(property);
        }
      }
      return property;
    };
  }

  @Bean
  OpenApiCustomizer exactResponses() {
    return openApi -> {
      Components components = openApi.getComponents();
      if (components == null) {
        components = new Components();
        openApi.setComponents(components);
      }
      @SuppressWarnings("rawtypes")
      Map<String, Schema> problem = ModelConverters.getInstance().readAll(ApiError.class);
      problem.forEach(components::addSchemas);
      components.addSchemas(PROBLEM, components.getSchemas().remove("ApiError"));
      components.addSecuritySchemes(
          BEARER,
          new SecurityScheme()
              .type(SecurityScheme.Type.HTTP)
              .scheme("bearer")
              .description("an API token: cotrain_ and 43 characters"));
      if (openApi.getPaths() != null) {
        openApi.getPaths().forEach(OpenApiConfig::errors);
      }
      components.getSchemas().values().forEach(OpenApiConfig::fullMatchPatterns);
      components.getSchemas().values().forEach(OpenApiConfig::notBlank);
      statuses(components);
      everyResponseFieldIsPresent(openApi);
      sortSchemas(components);
    };
  }

  /** The errors an operation can answer, beside those its annotations already list. */
  private static void errors(String path, PathItem item) {
    if (!path.startsWith("/api/")) {
      return;
    }
    for (Operation operation : item.readOperations()) {
      operation.addSecurityItem(new SecurityRequirement().addList(BEARER));

      ApiResponses responses = operation.getResponses();
      boolean hasBody = operation.getRequestBody() != null;
      boolean hasParameters =
          operation.getParameters() != null && !operation.getParameters().isEmpty();
      problem(
          responses,
          HttpStatus.BAD_REQUEST,
          hasBody || hasParameters
              ? "a field or parameter breaks a rule, or the request is malformed"
              : "the request is malformed (e.g. headers larger than the server reads)");
      problem(responses, HttpStatus.UNAUTHORIZED, "no token, or an unknown or revoked one");
      if (path.contains("{")) { // a path variable names something that may not exist
        problem(responses, HttpStatus.NOT_FOUND, "no such resource, or another owner's");
      }
      problem(responses, HttpStatus.NOT_ACCEPTABLE, "the Accept header excludes JSON");
      if (hasBody) {
        problem(responses, HttpStatus.PAYLOAD_TOO_LARGE, "the body is larger than 64 KiB");
        problem(responses, HttpStatus.UNSUPPORTED_MEDIA_TYPE, "the body is not JSON");
      }
      // Errors are problem+json whatever an annotation said.
      responses.forEach(
          (code, response) -> {
            if (code.startsWith("4") || code.startsWith("5")) {
              response.setContent(problemContent());
            }
          });
    }
  }

  /**
   * A query parameter with a default ({@code @RequestParam(defaultValue = ...)}) takes it when sent
   * empty ({@code ?limit=}), as Spring MVC does: its schema says so, and the empty string is one of
   * its values.
   */
  @Bean
  OperationCustomizer emptyQueryParametersMeanTheDefault() {
    return (operation, handler) -> {
      if (operation.getParameters() == null) {
        return operation;
      }
      for (MethodParameter method : handler.getMethodParameters()) {
        RequestParam param = method.getParameterAnnotation(RequestParam.class);
        if (param == null || ValueConstants.DEFAULT_NONE.equals(param.defaultValue())) {
          continue;
        }
        method.initParameterNameDiscovery(new DefaultParameterNameDiscoverer());
        String name = param.name().isEmpty() ? method.getParameterName() : param.name();
        for (Parameter parameter : operation.getParameters()) {
          if ("query".equals(parameter.getIn()) && parameter.getName().equals(name)) {
            emptyMeansDefault(parameter, param.defaultValue());
          }
        }
      }
      return operation;
    };
  }

  @SuppressWarnings({"rawtypes", "unchecked"})
  private static void emptyMeansDefault(Parameter parameter, String defaultValue) {
    Schema schema = parameter.getSchema();
    if (schema == null) {
      return;
    }
    boolean integer =
        "integer".equals(schema.getType())
            || (schema.getTypes() != null && schema.getTypes().contains("integer"));
    schema.setDefault(integer ? (Object) Long.valueOf(defaultValue) : defaultValue);
    if (schema.getEnum() != null) {
      List<Object> values = new ArrayList<>(schema.getEnum());
      values.add("");
      schema.setEnum(values);
      return;
    }
    Schema empty = new Schema<>().types(Set.of("string")).maxLength(0);
    Schema either = new Schema<>().anyOf(List.of(schema, empty));
    either.setDefault(schema.getDefault());
    parameter.setSchema(either);
    parameter.setDescription(
        (parameter.getDescription() == null ? "" : parameter.getDescription() + "; ")
            + "empty means the default");
  }

  private static void problem(ApiResponses responses, HttpStatus status, String description) {
    responses.putIfAbsent(
        String.valueOf(status.value()),
        new ApiResponse().description(description).content(problemContent()));
  }

  private static Content problemContent() {
    return new Content()
        .addMediaType(
            org.springframework.http.MediaType.APPLICATION_PROBLEM_JSON_VALUE,
            new MediaType().schema(new Schema<>().$ref("#/components/schemas/" + PROBLEM)));
  }

  /**
   * The API writes every field of a response, null or not, so each property of a schema that only
   * responses use is required (a request's optional fields are left alone).
   */
  @SuppressWarnings({"rawtypes", "unchecked"})
  private static void everyResponseFieldIsPresent(OpenAPI openApi) {
    Map<String, Schema> schemas = openApi.getComponents().getSchemas();
    if (schemas == null || openApi.getPaths() == null) {
      return;
    }
    List<Schema> fromRequests = new ArrayList<>();
    List<Schema> fromResponses = new ArrayList<>();
    for (PathItem item : openApi.getPaths().values()) {
      for (Operation operation : item.readOperations()) {
        if (operation.getRequestBody() != null && operation.getRequestBody().getContent() != null) {
          operation
              .getRequestBody()
              .getContent()
              .values()
              .forEach(m -> fromRequests.add(m.getSchema()));
        }
        if (operation.getResponses() != null) {
          for (ApiResponse response : operation.getResponses().values()) {
            if (response.getContent() != null) {
              response.getContent().values().forEach(m -> fromResponses.add(m.getSchema()));
            }
          }
        }
      }
    }
    Set<String> requestSchemas = reachable(fromRequests, schemas);
    // An optional request field may also be sent as null (it is then absent), and a stored request
    // shows it so.
    for (String name : requestSchemas) {
      Schema schema = schemas.get(name);
      if (schema != null && schema.getProperties() != null) {
        List<?> required = schema.getRequired() == null ? List.of() : schema.getRequired();
        Map<String, Schema> properties = schema.getProperties();
        properties.values().forEach(OpenApiConfig::noNul);
        properties.replaceAll(
            (field, property) -> required.contains(field) ? property : nullable(property));
      }
    }
    for (String name : reachable(fromResponses, schemas)) {
      Schema schema = schemas.get(name);
      if (schema != null && !requestSchemas.contains(name) && schema.getProperties() != null) {
        schema.setRequired(new ArrayList<String>(schema.getProperties().keySet()));
      }
    }
  }

  /** The names of the component schemas {@code roots} refer to, directly or not. */
  @SuppressWarnings({"rawtypes", "unchecked"})
  private static Set<String> reachable(List<Schema> roots, Map<String, Schema> schemas) {
    Set<String> seen = new HashSet<>();
    Deque<Schema> todo = new ArrayDeque<>(roots);
    while (!todo.isEmpty()) {
      Schema schema = todo.poll();
      if (schema == null) {
        continue;
      }
      if (schema.get$ref() != null) {
        String name = schema.get$ref().substring(schema.get$ref().lastIndexOf('/') + 1);
        if (seen.add(name) && schemas.containsKey(name)) {
          todo.add(schemas.get(name));
        }
      }
      if (schema.getProperties() != null) {
        todo.addAll(schema.getProperties().values());
      }
      if (schema.getItems() != null) {
        todo.add(schema.getItems());
      }
      if (schema.getAdditionalProperties() instanceof Schema extra) {
        todo.add(extra);
      }
      for (List<Schema> list :
          new List[] {schema.getAnyOf(), schema.getOneOf(), schema.getAllOf()}) {
        if (list != null) {
          todo.addAll(list);
        }
      }
    }
    return seen;
  }

  /**
   * A Jakarta {@code @Pattern} must match the whole value, a JSON Schema {@code pattern} only a
   * part of it: anchored here. A pattern of alternative words ({@code llama2|llama3|bert}) is an
   * enum as well.
   */
  @SuppressWarnings({"rawtypes", "unchecked"})
  private static void fullMatchPatterns(Schema schema) {
    if (schema.getProperties() == null) {
      return;
    }
    for (Object value : schema.getProperties().values()) {
      Schema property = (Schema) value;
      String pattern = property.getPattern();
      if (pattern == null || pattern.startsWith("^")) {
        continue;
      }
      property.setPattern("^(?:" + pattern + ")$");
      if (pattern.matches("[A-Za-z0-9_.-]+(\\|[A-Za-z0-9_.-]+)+")) {
        property.setEnum(new ArrayList<Object>(List.of(pattern.split("\\|"))));
      }
    }
  }

  /** A request's free text may hold anything but NUL, which the API refuses (PostgreSQL would). */
  @SuppressWarnings("rawtypes")
  private static void noNul(Schema property) {
    boolean text =
        "string".equals(property.getType())
            || (property.getTypes() != null && property.getTypes().contains("string"));
    if (text && property.getPattern() == null && property.getEnum() == null) {
      property.setPattern("^[^\\u0000]*$");
    }
  }

  /** A {@code @NotBlank} text has at least one character (a blank one is refused too). */
  @SuppressWarnings({"rawtypes", "unchecked"})
  private static void notBlank(Schema schema) {
    if (schema.getProperties() == null) {
      return;
    }
    for (Object value : schema.getProperties().values()) {
      Schema property = (Schema) value;
      if (property.getExtensions() != null && property.getExtensions().remove(NOT_BLANK) != null) {
        property.setMinLength(
            Math.max(1, property.getMinLength() == null ? 0 : property.getMinLength()));
        if (property.getExtensions().isEmpty()) {
          property.setExtensions(null);
        }
      }
    }
  }

  /** Every {@code status} and {@code previousStatus} of a response is a lifecycle state. */
  @SuppressWarnings({"rawtypes", "unchecked"})
  private static void statuses(Components components) {
    List<String> states = Arrays.stream(SessionStatus.values()).map(Enum::name).toList();
    for (String name : List.of("SessionResponse", "SessionEventRow", "ControlResponse")) {
      Schema schema = components.getSchemas().get(name);
      if (schema == null || schema.getProperties() == null) {
        continue;
      }
      for (String field : List.of("status", "previousStatus")) {
        Schema property = (Schema) schema.getProperties().get(field);
        if (property != null) {
          List<Object> values = new ArrayList<>(states);
          if (property.getTypes() != null && property.getTypes().contains("null")) {
            values.add(null);
          }
          property.setEnum(values);
        }
      }
    }
  }

  @SuppressWarnings("rawtypes")
  private static void sortSchemas(Components components) {
    if (components.getSchemas() != null) {
      components.setSchemas(new LinkedHashMap<>(new TreeMap<>(components.getSchemas())));
    }
  }

  /** {@code schema} admitting null as well: a type gains "null", a reference becomes anyOf. */
  @SuppressWarnings({"rawtypes", "unchecked"})
  static Schema nullable(Schema schema) {
    if (schema.get$ref() != null) {
      Schema either = new Schema<>();
      either.setAnyOf(
          List.of(new Schema<>().$ref(schema.get$ref()), new Schema<>().types(Set.of("null"))));
      either.setDescription(schema.getDescription());
      return either;
    }
    if (schema.getEnum() != null && !schema.getEnum().contains(null)) {
      List<Object> values = new ArrayList<>(schema.getEnum());
      values.add(null);
      schema.setEnum(values);
    }
    if (schema.getTypes() != null && !schema.getTypes().isEmpty()) {
      Set<String> types = new java.util.LinkedHashSet<>(schema.getTypes());
      types.add("null");
      schema.setTypes(types);
    } else if (schema.getType() != null) {
      schema.setTypes(new java.util.LinkedHashSet<>(List.of(schema.getType(), "null")));
    }
    return schema;
  }
}
