package dev.cotrain.api.session;

import jakarta.validation.ConstraintValidator;
import jakarta.validation.ConstraintValidatorContext;
import java.util.regex.Pattern;

public class RelativeDataPathValidator implements ConstraintValidator<RelativeDataPath, String> {

  private static final Pattern SEGMENT = Pattern.compile("[A-Za-z0-9._-]+");

  @Override
  public boolean isValid(String path, ConstraintValidatorContext context) {
    String problem = problem(path);
    if (problem == null) {
      return true;
    }
    context.disableDefaultConstraintViolation();
    context.buildConstraintViolationWithTemplate(problem).addConstraintViolation();
    return false;
  }

  /** Why {@code path} is refused, or null when it is acceptable. */
  static String problem(String path) {
    if (path == null || path.isEmpty()) {
      return null;
    }
    if (path.startsWith("/")) {
      return "must be a relative path (no leading '/')";
    }
    for (String segment : path.split("/", -1)) {
      if (segment.equals("..") || segment.equals(".")) {
        return "must not contain '.' or '..' segments";
      }
      if (segment.isEmpty()) {
        return "must not contain empty segments ('//' or a trailing '/')";
      }
      if (!SEGMENT.matcher(segment).matches()) {
        return "may contain only letters, digits, '.', '_', '-' and '/'";
      }
    }
    return null;
  }
}
