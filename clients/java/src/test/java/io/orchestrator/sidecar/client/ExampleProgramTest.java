package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.File;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import javax.tools.JavaCompiler;
import javax.tools.ToolProvider;
import org.junit.jupiter.api.Test;

/**
 * examples/java (the same code as the README's "Use" section) compiled against this client and run
 * against the contract sidecar, as an application developer would run it: it must succeed and print
 * what it promises.
 */
class ExampleProgramTest {
  private static final Path EXAMPLE = SidecarProcess.REPO_ROOT.resolve("examples/java/src/main/java/example/Main.java");
  private static final String TOKEN = "contract-token";

  @Test
  void theExampleRunsAgainstARealSidecar() throws Exception {
    // surefire runs the tests from a manifest-only jar: the real class path is in this property
    String classPath = System.getProperty("surefire.test.class.path", System.getProperty("java.class.path"));
    Path classes = Files.createTempDirectory("example-java-");
    JavaCompiler javac = ToolProvider.getSystemJavaCompiler();
    int compiled = javac.run(null, null, null, "-d", classes.toString(), "-cp", classPath, EXAMPLE.toString());
    assertEquals(0, compiled, "examples/java does not compile against the client");

    try (SidecarProcess sidecar = SidecarProcess.start(SidecarProcess.REPO_ROOT.resolve("tests/contract/sidecar.yaml"), TOKEN)) {
      Path java = Path.of(System.getProperty("java.home"), "bin", "java");
      ProcessBuilder pb = new ProcessBuilder(java.toString(), "-cp", classes + File.pathSeparator + classPath, "example.Main");
      pb.environment().put(SidecarClient.ADDRESS_ENV, sidecar.address);
      pb.environment().put(SidecarClient.TOKEN_ENV, TOKEN);
      Path output = classes.resolve("stdout.txt");
      Path errors = classes.resolve("stderr.txt");
      Process run = pb.redirectOutput(output.toFile()).redirectError(errors.toFile()).start();
      assertTrue(run.waitFor(60, TimeUnit.SECONDS), "the example did not finish within 60 s");
      String stdout = Files.readString(output, StandardCharsets.UTF_8);
      String stderr = Files.readString(errors, StandardCharsets.UTF_8);
      assertEquals(0, run.exitValue(), "the example failed:\n" + stdout + stderr);
      List<String> lines = stdout.strip().lines().toList();
      assertEquals(3, lines.size(), stdout);
      assertTrue(lines.get(0).matches("hello \\d+"), lines.get(0));
      assertEquals("hello, streaming", lines.get(1));
      assertEquals("MODEL_NOT_FOUND: model=no-such-route", lines.get(2));
    }
  }
}
