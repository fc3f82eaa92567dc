package dev.cotrain.api.session;

import jakarta.validation.Constraint;
import jakarta.validation.Payload;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * Empty, or a relative path of {@code [A-Za-z0-9._-]} segments separated by single slashes, with no
 * {@code .} or {@code ..} segment: it names a file under the storage root's datasets/raw, and must
 * not be able to leave that directory.
 */
@Target({ElementType.FIELD, ElementType.PARAMETER, ElementType.METHOD})
@Retention(RetentionPolicy.RUNTIME)
@Constraint(validatedBy = RelativeDataPathValidator.class)
public @interface RelativeDataPath {
  String message() default "must be a relative path";

  Class<?>[] groups() default {};

  Class<? extends Payload>[] payload() default {};
}
