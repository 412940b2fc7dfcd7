package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.InputStream;
import java.nio.file.Files;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.yaml.snakeyaml.Yaml;

/** Address and token defaults. */
class SidecarClientBuilderTest {
  private static final Map<String, String> ENV = Map.of("ORCHESTRATOR_SIDECAR_ADDRESS", "unix:///run/s.sock", "ORCHESTRATOR_SIDECAR_TOKEN", "t");

  @Test
  void addressForms() {
    assertEquals("dns:///127.0.0.1:50051", SidecarAddress.target("127.0.0.1:50051"));
    assertEquals("dns:///[::1]:7", SidecarAddress.target("[::1]:7"));
    assertEquals("unix:///run/s.sock", SidecarAddress.target("unix:///run/s.sock"));
    assertEquals("unix:///run/s.sock", SidecarAddress.target("unix:/run/s.sock"));
    for (String bad : new String[] {"localhost", "host:0", "host:99999", "unix://relative", ""}) {
      assertThrows(IllegalArgumentException.class, () -> SidecarAddress.target(bad), bad);
    }
  }

  @Test
  void defaultsComeFromTheEnvironmentThenTheBuiltIns() {
    assertEquals("dns:///127.0.0.1:50051", SidecarClient.builder().environment(Map.of()).target());
    assertEquals("unix:///run/s.sock", SidecarClient.builder().environment(ENV).target());
    assertEquals("dns:///h:1", SidecarClient.builder().environment(ENV).address("h:1").target());
    assertEquals("t", SidecarClient.builder().environment(ENV).resolvedToken());
    assertNull(SidecarClient.builder().environment(ENV).withoutToken().resolvedToken());
    assertEquals("x", SidecarClient.builder().environment(ENV).token("x").resolvedToken());
    assertNull(SidecarClient.builder().environment(ENV).token("").resolvedToken()); // never "Bearer "
    assertNull(SidecarClient.builder().environment(Map.of()).resolvedToken());
  }

  /** tests/contract/addresses.yaml, replayed by every client: the same addresses taken and refused. */
  @Test
  @SuppressWarnings("unchecked")
  void theSharedAddressTable() throws Exception {
    Map<String, Object> table;
    try (InputStream in = Files.newInputStream(SidecarProcess.REPO_ROOT.resolve("tests/contract/addresses.yaml"))) {
      table = new Yaml().load(in);
    }
    ((Map<String, String>) table.get("unix")).forEach((address, path) ->
        assertEquals("unix://" + path, SidecarAddress.target(address), address));
    for (String address : (List<String>) table.get("tcp")) {
      assertTrue(SidecarAddress.target(address).startsWith("dns:///"), address);
    }
    for (String address : (List<String>) table.get("refused")) {
      IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> SidecarAddress.target(address), address);
      assertTrue(e.getMessage().contains("sidecar address"), e.getMessage());
    }
  }
}
