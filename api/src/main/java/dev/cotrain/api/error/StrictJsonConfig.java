package dev.cotrain.api.error;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.DeserializationContext;
import com.fasterxml.jackson.databind.JsonMappingException;
import com.fasterxml.jackson.databind.cfg.CoercionAction;
import com.fasterxml.jackson.databind.cfg.CoercionInputShape;
import com.fasterxml.jackson.databind.deser.std.StdScalarDeserializer;
import com.fasterxml.jackson.databind.deser.std.StringDeserializer;
import com.fasterxml.jackson.databind.module.SimpleModule;
import com.fasterxml.jackson.databind.type.LogicalType;
import java.io.IOException;
import org.springframework.boot.autoconfigure.jackson.Jackson2ObjectMapperBuilderCustomizer;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;

/**
 * Request JSON is typed strictly: besides the spring.jackson.* settings in application.properties,
 * a number or boolean where a string belongs is refused rather than turned into text, and so is a
 * string holding the NUL character, which PostgreSQL cannot store.
 */
@Configuration(proxyBeanMethods = false)
class StrictJsonConfig {

  /** The message of a string field holding the NUL character. */
  static final String NUL = "must not contain the NUL character";

  /** Thrown for a string holding NUL, with the path of its field. */
  static final class NulInText extends JsonMappingException {
    NulInText(JsonParser parser) {
      super(parser, NUL);
    }
  }

  @Bean
  Jackson2ObjectMapperBuilderCustomizer strictTextCoercion() {
    SimpleModule noNul = new SimpleModule("no-nul-in-text");
    noNul.addDeserializer(
        String.class,
        new StdScalarDeserializer<String>(String.class) {
          @Override
          public String deserialize(JsonParser parser, DeserializationContext context)
              throws IOException {
            String text = StringDeserializer.instance.deserialize(parser, context);
            if (text != null && text.indexOf('\0') >= 0) {
              throw new NulInText(parser);
            }
            return text;
          }
        });
    return builder ->
        builder
            .modulesToInstall(noNul)
            .postConfigurer(
                mapper ->
                    mapper
                        .coercionConfigFor(LogicalType.Textual)
                        .setCoercion(CoercionInputShape.Integer, CoercionAction.Fail)
                        .setCoercion(CoercionInputShape.Float, CoercionAction.Fail)
                        .setCoercion(CoercionInputShape.Boolean, CoercionAction.Fail));
  }
}
