package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.util.Map;
import org.junit.jupiter.api.Test;

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
}
