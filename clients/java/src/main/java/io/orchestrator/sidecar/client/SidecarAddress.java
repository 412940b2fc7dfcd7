package io.orchestrator.sidecar.client;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Sidecar addresses: {@code host:port}, {@code [v6]:port}, {@code unix:///abs/path}, {@code unix:/abs/path}
 * or a bare absolute path (a Unix socket, as in the Go and Python clients: tests/contract/addresses.yaml).
 */
public final class SidecarAddress {
  private static final Pattern HOST_PORT = Pattern.compile("^(?:\\[([0-9a-fA-F:.]+)\\]|([^:\\s/\\[\\]]+)):(\\d{1,5})$");

  private SidecarAddress() {}

  /** The gRPC target for an address; IllegalArgumentException naming the address when it is none of the forms. */
  public static String target(String address) {
    String trimmed = address.trim();
    if (trimmed.startsWith("/")) {
      return "unix://" + trimmed;
    }
    if (trimmed.startsWith("unix:")) {
      String path = trimmed.startsWith("unix://") ? trimmed.substring("unix://".length()) : trimmed.substring("unix:".length());
      if (!path.startsWith("/")) {
        throw new IllegalArgumentException("sidecar address \"" + address + "\": a Unix socket path must be absolute");
      }
      return "unix://" + path;
    }
    Matcher m = HOST_PORT.matcher(trimmed);
    int port = m.matches() ? Integer.parseInt(m.group(3)) : -1;
    if (port < 1 || port > 65535) {
      throw new IllegalArgumentException("sidecar address \"" + address + "\": expected host:port, unix:///path or an absolute path");
    }
    return m.group(1) != null ? "dns:///[" + m.group(1) + "]:" + port : "dns:///" + m.group(2) + ":" + port;
  }
}
