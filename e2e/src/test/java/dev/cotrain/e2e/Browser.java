package dev.cotrain.e2e;

import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import org.openqa.selenium.By;
import org.openqa.selenium.OutputType;
import org.openqa.selenium.StaleElementReferenceException;
import org.openqa.selenium.TakesScreenshot;
import org.openqa.selenium.WebDriver;
import org.openqa.selenium.WebElement;
import org.openqa.selenium.chrome.ChromeDriver;
import org.openqa.selenium.chrome.ChromeDriverService;
import org.openqa.selenium.chrome.ChromeOptions;
import org.openqa.selenium.support.ui.ExpectedCondition;
import org.openqa.selenium.support.ui.WebDriverWait;

/**
 * A headless Debian chromium driven by its chromedriver ({@code COTRAIN_CHROMIUM}, {@code
 * COTRAIN_CHROMEDRIVER}; by default /usr/bin/chromium and /usr/bin/chromedriver, which {@code
 * ./cotrain test} installs). Nothing is downloaded: both paths are given, so Selenium Manager never
 * runs. Screenshots go to {@code target/screenshots}.
 */
final class Browser implements AutoCloseable {

  static final Path SCREENSHOTS = Path.of("target/screenshots");

  final WebDriver driver;
  private final Path profile;

  Browser() throws IOException {
    String chromium = Stack.ENV.getOrDefault("COTRAIN_CHROMIUM", "/usr/bin/chromium");
    String chromedriver = Stack.ENV.getOrDefault("COTRAIN_CHROMEDRIVER", "/usr/bin/chromedriver");
    for (String program : new String[] {chromium, chromedriver}) {
      if (!Files.isExecutable(Path.of(program))) {
        throw new IllegalStateException(
            program
                + " is missing: the dashboard's test needs Debian's chromium and chromium-driver"
                + " (./cotrain test installs them)");
      }
    }
    profile = Files.createTempDirectory("cotrain-chromium");
    ChromeOptions options = new ChromeOptions();
    options.setBinary(chromium);
    // No sandbox (tests may run as root); nothing that reaches out of this closed network.
    options.addArguments(
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        "--user-data-dir=" + profile);
    ChromeDriverService service =
        new ChromeDriverService.Builder().usingDriverExecutable(new File(chromedriver)).build();
    driver = new ChromeDriver(service, options);
  }

  WebElement find(String css) {
    return driver.findElement(By.cssSelector(css));
  }

  /**
   * Waits up to {@code limit} for {@code condition} to hold (to be non-null and not false); an
   * element redrawn while it was read is read again.
   */
  <T> T await(Duration limit, String what, ExpectedCondition<T> condition) {
    return new WebDriverWait(driver, limit)
        .withMessage(what)
        .ignoring(StaleElementReferenceException.class)
        .until(condition);
  }

  void screenshot(String name) throws IOException {
    Files.createDirectories(SCREENSHOTS);
    byte[] png = ((TakesScreenshot) driver).getScreenshotAs(OutputType.BYTES);
    Files.write(SCREENSHOTS.resolve(name + ".png"), png);
  }

  @Override
  public void close() throws IOException {
    driver.quit();
    try (var files = Files.walk(profile)) {
      files.sorted(java.util.Comparator.reverseOrder()).map(Path::toFile).forEach(File::delete);
    }
  }
}
