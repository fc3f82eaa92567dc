package dev.cotrain.api.auth;

import com.fasterxml.jackson.databind.ObjectMapper;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.web.servlet.FilterRegistrationBean;
import org.springframework.context.annotation.Bean;
import org.springframework.context.annotation.Configuration;
import org.springframework.web.servlet.config.annotation.CorsRegistry;
import org.springframework.web.servlet.config.annotation.WebMvcConfigurer;

/**
 * Tokens guard {@code /api/*}; health, the OpenAPI document and the dashboard's files stay open.
 * Browsers on the configured frontend origins ({@code cotrain.frontend.origins}) may call the API.
 */
@Configuration(proxyBeanMethods = false)
class AuthConfig implements WebMvcConfigurer {

  private final String[] origins;

  AuthConfig(@Value("${cotrain.frontend.origins:}") String[] origins) {
    this.origins = origins;
  }

  @Override
  public void addCorsMappings(CorsRegistry registry) {
    if (origins.length > 0) {
      registry
          .addMapping("/api/**")
          .allowedOrigins(origins)
          .allowedMethods("GET", "POST", "PUT", "DELETE")
          .allowedHeaders("Authorization", "Content-Type", "Idempotency-Key");
    }
  }

  @Bean
  FilterRegistrationBean<BearerTokenFilter> bearerTokenFilter(
      TokenRepository tokens, ObjectMapper mapper) {
    FilterRegistrationBean<BearerTokenFilter> registration =
        new FilterRegistrationBean<>(new BearerTokenFilter(tokens, mapper));
    registration.addUrlPatterns("/api/*");
    return registration;
  }
}
