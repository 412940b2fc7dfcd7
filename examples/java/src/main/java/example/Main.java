package example;

import io.grpc.Deadline;
import io.orchestrator.sidecar.client.GenerationStream;
import io.orchestrator.sidecar.client.Messages;
import io.orchestrator.sidecar.client.NotFoundException;
import io.orchestrator.sidecar.client.SidecarClient;
import io.orchestrator.sidecar.v1.GenerateResponse;
import java.util.concurrent.TimeUnit;

/** One unary call, one stream, one typed error. Run a sidecar (`make run`) first. */
public final class Main {
  public static void main(String[] args) {
    try (SidecarClient client = SidecarClient.create()) { // $ORCHESTRATOR_SIDECAR_ADDRESS / _TOKEN, else 127.0.0.1:50051
      GenerateResponse answer = client.generate(Messages.ask("hello"), Deadline.after(10, TimeUnit.SECONDS));
      System.out.println(Messages.textOf(answer.getMessage()) + " " + answer.getSummary().getUsage().getTotalTokens());

      try (GenerationStream stream = client.stream(Messages.ask("hello, streaming"))) {
        stream.forEachRemaining(event -> System.out.print(event.getDelta().getText()));
      }
      System.out.println();

      try {
        client.generate(Messages.ask("hi").toBuilder().setModel("no-such-route").build());
      } catch (NotFoundException e) {
        System.out.println(e.reason() + ": model=" + e.metadata().get("model"));
      }
    }
  }
}
