package dev.cotrain.api.auth;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.attribute.PosixFilePermissions;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;
import org.springframework.beans.factory.annotation.Value;
import org.springframework.boot.ApplicationArguments;
import org.springframework.boot.ApplicationRunner;
import org.springframework.stereotype.Component;

/**
 * The first start creates an admin token, prints it once, and keeps it in {@code admin-token} under
 * the storage root, readable only by its owner, where {@code ./cotrain} finds it. Later starts find
 * an active admin token and do nothing.
 */
@Component
class AdminToken implements ApplicationRunner {

  static final String FILE = "admin-token";

  private static final Logger log = LoggerFactory.getLogger(AdminToken.class);

  private final TokenRepository tokens;
  private final Path storageRoot;

  AdminToken(TokenRepository tokens, @Value("${cotrain.storage-root}") Path storageRoot) {
    this.tokens = tokens;
    this.storageRoot = storageRoot;
  }

  @Override
  public void run(ApplicationArguments args) throws IOException {
    var created = tokens.createFirstAdmin();
    if (created.isEmpty()) {
      return;
    }
    Path file = storageRoot.resolve(FILE);
    Files.createDirectories(storageRoot);
    Path temp = Files.createTempFile(storageRoot, FILE, ".tmp");
    Files.setPosixFilePermissions(temp, PosixFilePermissions.fromString("rw-------"));
    Files.writeString(temp, created.get().token() + "\n");
    Files.move(temp, file, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
    log.info(
        "Created the admin API token (shown once; kept in {}, readable only by its owner): {}",
        file.toAbsolutePath(),
        created.get().token());
  }
}
