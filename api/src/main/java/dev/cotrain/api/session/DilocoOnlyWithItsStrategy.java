package dev.cotrain.api.session;

import jakarta.validation.Constraint;
import jakarta.validation.ConstraintValidator;
import jakarta.validation.ConstraintValidatorContext;
import jakarta.validation.Payload;
import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;

/**
 * DiLoCo settings mean nothing to another strategy: a {@code diloco} object is allowed only with
 * {@code strategy: diloco}. Reported on the field {@code diloco}.
 */
@Target(ElementType.TYPE)
@Retention(RetentionPolicy.RUNTIME)
@Constraint(validatedBy = DilocoOnlyWithItsStrategy.Validator.class)
@interface DilocoOnlyWithItsStrategy {
  String message() default "is allowed only with strategy diloco";

  Class<?>[] groups() default {};

  Class<? extends Payload>[] payload() default {};

  class Validator
      implements ConstraintValidator<
          DilocoOnlyWithItsStrategy, CreateSessionRequest.DistributedConfig> {
    @Override
    public boolean isValid(
        CreateSessionRequest.DistributedConfig config, ConstraintValidatorContext context) {
      if (config == null || config.diloco() == null || "diloco".equals(config.strategy())) {
        return true;
      }
      context.disableDefaultConstraintViolation();
      context
          .buildConstraintViolationWithTemplate(context.getDefaultConstraintMessageTemplate())
          .addPropertyNode("diloco")
          .addConstraintViolation();
      return false;
    }
  }
}
