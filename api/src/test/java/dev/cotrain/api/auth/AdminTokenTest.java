package dev.cotrain.api.auth;

import static org.assertj.core.api.Assertions.assertThat;
import static org.springframework.test.web.servlet.request.MockMvcRequestBuilders.get;

import dev.cotrain.api.ApiTestSupport;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.springframework.beans.factory.annotation.Autowired;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.test.web.servlet.MockMvc;

class AdminTokenTest extends ApiTestSupport {

  @Autowired AdminToken adminToken;
  @Autowired MockMvc mvc;

  @Value("${cotrain.storage-root}")
  Path storageRoot;

  @Test
  void withoutAnActiveAdminTokenAStartCreatesOneInAFileOnlyItsOwnerReads() throws Exception {
    jdbc.sql("UPDATE api_tokens SET revoked_at = now() WHERE admin").update();
    Path file = storageRoot.resolve(AdminToken.FILE);
    Files.deleteIfExists(file);

    adminToken.run(null);
    String token = Files.readString(file).strip();
    adminToken.run(null); // a second start finds it and changes nothing

    assertThat(PosixFilePermissions.toString(Files.getPosixFilePermissions(file)))
        .isEqualTo("rw-------");
    assertThat(Files.readString(file).strip()).isEqualTo(token);
    assertThat(
            mvc.perform(get("/api/tokens").header("Authorization", "Bearer " + token))
                .andReturn()
                .getResponse()
                .getStatus())
        .isEqualTo(200);
    assertThat(
            jdbc.sql("SELECT count(*) FROM api_tokens WHERE admin AND revoked_at IS NULL")
                .query(Long.class)
                .single())
        .isEqualTo(1);
  }
}
