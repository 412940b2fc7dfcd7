package io.orchestrator.sidecar.client;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.fail;

import io.grpc.Deadline;
import io.grpc.Grpc;
import io.grpc.InsecureServerCredentials;
import io.grpc.Server;
import io.grpc.stub.StreamObserver;
import io.orchestrator.sidecar.v1.GenerateRequest;
import io.orchestrator.sidecar.v1.GenerateResponse;
import io.orchestrator.sidecar.v1.GenerationServiceGrpc;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;

/**
 * The sidecar down for a while (restarting, or the application started first), then up: the client
 * reaches it with the next call, not after grpc-java's reconnect backoff (1 s growing 1.6 times per
 * failed attempt up to 2 minutes), which after a few seconds of outage left every call failing
 * UNAVAILABLE for seconds, after a minute for tens of seconds, with the sidecar serving.
 */
class ReconnectTest {
  /** A stand-in sidecar that answers Generate, started on a port the client already targets. */
  private static Server answering(int port) throws Exception {
    return Grpc.newServerBuilderForPort(port, InsecureServerCredentials.create())
        .addService(new GenerationServiceGrpc.GenerationServiceImplBase() {
          @Override
          public void generate(GenerateRequest request, StreamObserver<GenerateResponse> answer) {
            answer.onNext(GenerateResponse.getDefaultInstance());
            answer.onCompleted();
          }
        })
        .build()
        .start();
  }

  @Test
  void theNextCallAfterTheSidecarIsBackReachesIt() throws Exception {
    int port = SidecarProcess.freePort();
    try (SidecarClient client = SidecarClient.builder().address("127.0.0.1:" + port).withoutToken().build()) {
      long down = System.nanoTime() + TimeUnit.SECONDS.toNanos(6);
      while (System.nanoTime() < down) { // the default backoff has grown to about 4 s by now
        assertThrows(UnavailableException.class, () -> client.generate(Messages.ask("anyone?"), Deadline.after(1, TimeUnit.SECONDS)));
        Thread.sleep(100);
      }
      Server server = answering(port);
      try {
        long giveUp = System.nanoTime() + TimeUnit.MILLISECONDS.toNanos(1200);
        int failed = 0;
        while (true) {
          try {
            client.generate(Messages.ask("back?"), Deadline.after(1, TimeUnit.SECONDS));
            break;
          } catch (UnavailableException e) {
            failed++;
            if (System.nanoTime() > giveUp) {
              fail("the sidecar answers, yet " + failed + " calls over 1.2 s failed: " + e.getMessage());
            }
            Thread.sleep(100);
          }
        }
        assertEquals(GenerateResponse.getDefaultInstance(), client.generate(Messages.ask("still?"), Deadline.after(1, TimeUnit.SECONDS)));
      } finally {
        server.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
      }
    }
  }
}
