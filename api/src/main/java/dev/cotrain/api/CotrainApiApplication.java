package dev.cotrain.api;

import io.swagger.v3.oas.annotations.OpenAPIDefinition;
import io.swagger.v3.oas.annotations.info.Info;
import org.springframework.boot.SpringApplication;
import org.springframework.boot.autoconfigure.SpringBootApplication;
import org.springframework.boot.context.properties.ConfigurationPropertiesScan;
import org.springframework.scheduling.annotation.EnableScheduling;

/** The Cotrain REST API and WebSocket relay. */
@SpringBootApplication
@ConfigurationPropertiesScan
@EnableScheduling
@OpenAPIDefinition(
    info =
        @Info(
            title = "Cotrain API",
            version = "v1",
            description = "Training sessions as Temporal workflows; see docs/api.md"))
public class CotrainApiApplication {

  public static void main(String[] args) {
    SpringApplication.run(CotrainApiApplication.class, args);
  }
}
