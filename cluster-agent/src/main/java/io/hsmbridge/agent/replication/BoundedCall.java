package io.hsmbridge.agent.replication;

import java.io.IOException;
import java.io.InterruptedIOException;
import java.time.Duration;
import java.util.concurrent.CompletableFuture;
import java.util.concurrent.CompletionException;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Executor;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;
import org.apache.ratis.client.RaftClient;
import org.apache.ratis.client.RaftClientConfigKeys;
import org.apache.ratis.conf.Parameters;
import org.apache.ratis.conf.RaftProperties;
import org.apache.ratis.protocol.ClientId;
import org.apache.ratis.protocol.RaftClientReply;
import org.apache.ratis.protocol.RaftGroup;
import org.apache.ratis.retry.RetryPolicy;
import org.apache.ratis.util.TimeDuration;

/**
 * One Ratis client call that must end within a timeout. {@link MutationLog}'s shared client retries
 * forever (a submit waits for a majority); a bounded call gets its own client whose retry policy gives up
 * at the deadline and which is closed at the deadline, so that a request still in flight ends too. Meant
 * for rare calls (catch-up checks, membership changes): a client per call costs a few milliseconds.
 */
final class BoundedCall {
  /** A call through a RaftClient. */
  @FunctionalInterface
  interface ClientCall {
    RaftClientReply call(RaftClient client) throws IOException;
  }

  private BoundedCall() {}

  /**
   * @param base the log's properties (a copy gets a request timeout no longer than {@code timeout})
   * @param parameters the log's TLS parameters: a bounded call authenticates like the log's own client
   * @param group the group to address (its current membership, so the client finds the leader)
   * @param runner where the blocking call runs while the caller waits at most {@code timeout}
   * @throws TimeoutException when no reply came within {@code timeout}
   * @throws IOException when the client gave up, or the caller was interrupted (flag set again)
   */
  static RaftClientReply run(RaftProperties base, Parameters parameters, RaftGroup group, Duration timeout,
      Executor runner, ClientCall call)
      throws IOException, TimeoutException {
    long deadline = System.nanoTime() + timeout.toNanos();
    RaftProperties props = new RaftProperties(base);
    long millis = Math.max(100, Math.min(timeout.toMillis(), MutationLog.REQUEST_TIMEOUT.toLong(TimeUnit.MILLISECONDS)));
    RaftClientConfigKeys.Rpc.setRequestTimeout(props, TimeDuration.valueOf(millis, TimeUnit.MILLISECONDS));
    RaftClient client = RaftClient.newBuilder()
        .setProperties(props)
        .setParameters(parameters)
        .setRaftGroup(group)
        .setClientId(ClientId.randomId())
        .setRetryPolicy(event -> System.nanoTime() < deadline ? () -> MutationLog.RETRY_SLEEP : RetryPolicy.NO_RETRY_ACTION)
        .build();
    try {
      CompletableFuture<RaftClientReply> reply = CompletableFuture.supplyAsync(() -> {
        try {
          return call.call(client);
        } catch (IOException e) {
          throw new CompletionException(e);
        }
      }, runner);
      return reply.get(Math.max(0, deadline - System.nanoTime()), TimeUnit.NANOSECONDS);
    } catch (InterruptedException e) {
      Thread.currentThread().interrupt();
      throw new InterruptedIOException("interrupted while waiting for the mutation log");
    } catch (ExecutionException e) {
      Throwable cause = e.getCause() instanceof CompletionException c && c.getCause() != null ? c.getCause() : e.getCause();
      throw cause instanceof IOException io ? io : new IOException(cause);
    } finally {
      try {
        client.close(); // also ends a call still running on the runner after a timeout
      } catch (IOException ignored) {
        // the call's own outcome is what the caller needs
      }
    }
  }
}
