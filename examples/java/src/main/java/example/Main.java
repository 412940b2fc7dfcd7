package example;

import io.grpc.Deadline;
import io.orchestrator.sidecar.client.GenerationStream;
import io.orchestrator.sidecar.client.Messages;
import io.orchestrator.sidecar.client.NotFoundException;
import io.orchestrator.sidecar.client.SidecarClient;
import io.orchestrator.sidecar.v1.GenerateResponse;
import io.orchestrator.sidecar.v1.GenerationInput;
import java.util.concurrent.TimeUnit;

/** One unary call, one stream, one typed error. Run a sidecar (`make run`) first. */
public final class Main {
  /** A question from user u1 of tenant acme: the sidecar charges every call to a tenant's user. */
  static GenerationInput ask(String text) {
    return Messages.ask(text).toBuilder().setTenantId("acme").setUserId("u1").build();
  }

  public static void main(String[] args) {
    try (SidecarClient client = SidecarClient.create()) { // $ORCHESTRATOR_SIDECAR_ADDRESS / _TOKEN, else 127.0.0.1:50051
      GenerateResponse answer = client.generate(ask("hello"), Deadline.after(10, TimeUnit.SECONDS));
      System.out.println(Messages.textOf(answer.getMessage()) + " " + answer.getSummary().getUsage().getTotalTokens());

      try (GenerationStream stream = client.stream(ask("hello, streaming"))) {
        stream.forEachRemaining(event -> System.out.print(event.getDelta().getText()));
      }
      System.out.println();

      try {
        client.generate(ask("hi").toBuilder().setModel("no-such-route").build());
      } catch (NotFoundException e) {
        System.out.println(e.reason() + ": model=" + e.metadata().get("model"));
      }
    }
  }
}
