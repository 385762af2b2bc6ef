package io.hsmbridge.agent.replication;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.hsmbridge.agent.ClusterOperations;
import io.hsmbridge.agent.cluster.AgentState;
import io.hsmbridge.agent.cluster.AppliedWatch;
import io.hsmbridge.agent.users.Principal;
import io.hsmbridge.pkcs11.HsmToken;
import io.hsmbridge.pkcs11.SoftHsmFixture;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonObject;
import java.nio.file.Path;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.function.Supplier;

/**
 * Three real SoftHSM2 tokens sharing one cluster key, a real 3-peer Raft group over them, and the real
 * agent request handler ({@link ClusterOperations}) on each; the front door is played by hand: a login's
 * reply gives the principal and session proof that {@link #call} puts into each request, as FrontDoor does.
 */
final class TestAgents implements AutoCloseable {
  final List<HsmToken> tokens = new ArrayList<>();
  /** Each HSM's audit lines: "user role op target result". */
  final List<List<String>> audits = new ArrayList<>();
  final List<ClusterOperations> agents = new ArrayList<>();
  final List<AppliedWatch> watches = new ArrayList<>();
  final List<TokenApplier> appliers = new ArrayList<>();
  final TestCluster cluster;

  private TestAgents(Path dir, String tokenPrefix) {
    for (int i = 1; i <= 3; i++) {
      tokens.add(HsmToken.open(SoftHsmFixture.newToken(tokenPrefix + "-" + i)));
    }
    // As an agent's first start does (ClusterKeyJoin): the cluster key and the backup key with its carrier.
    tokens.get(0).clusterKeys().createClusterKey();
    tokens.get(0).backupKeys().createBackupKey();
    for (int i = 1; i < 3; i++) {
      byte[] transport = tokens.get(i).clusterKeys().createTransportKey();
      tokens.get(i).clusterKeys().installClusterKey(tokens.get(0).clusterKeys().wrapForJoiner(transport));
    }
    List<Applier> forRaft = new ArrayList<>();
    for (int i = 0; i < 3; i++) {
      List<String> lines = Collections.synchronizedList(new ArrayList<>());
      audits.add(lines);
      AppliedWatch w = new AppliedWatch(0);
      watches.add(w);
      TokenApplier a = new TokenApplier(tokens.get(i), w::advance,
          (user, role, op, target, result) -> lines.add(user + " " + role + " " + op + " " + target + " " + result));
      appliers.add(a);
      forRaft.add(a);
    }
    cluster = new TestCluster(dir, forRaft).startAll();
    cluster.leader();
    for (int i = 0; i < 3; i++) {
      agents.add(newAgent(i));
    }
  }

  static TestAgents start(Path dir, String tokenPrefix) {
    return new TestAgents(dir, tokenPrefix);
  }

  /** A fresh request handler for HSM {@code i}: what the agent process has after a restart (no memory). */
  ClusterOperations newAgent(int i) {
    Supplier<AgentState> serving = () -> AgentState.SERVING;
    return new ClusterOperations(cluster.peers.get(i).id(), tokens.get(i), cluster.logs[i], watches.get(i),
        serving, Duration.ofSeconds(20), appliers.get(i));
  }

  /** Activation (the PRECO logs in at HSM 1, activates through HSM 2), then the admin's login at HSM 3. */
  JsonObject activate(String adminPassword) {
    JsonObject preco = login(0, "admin", "password");
    call(1, preco, new JsonObject().put("op", "cluster.activate").put("password", adminPassword));
    return login(2, "admin", adminPassword);
  }

  /** A crypto user made by {@code admin}, logged in at HSM {@code hsm}. */
  JsonObject cryptoUser(JsonObject admin, String name, String password, int hsm) {
    call(0, admin, new JsonObject().put("op", "user.create").put("name", name).put("role", "CU").put("password", password));
    return login(hsm, name, password);
  }

  /** auth.login on one agent; the reply with the session proof the front door keeps. */
  JsonObject login(int hsm, String user, String password) {
    return login(hsm, new JsonObject().put("op", "auth.login").put("user", user).put("password", password));
  }

  /** auth.login with a complete body (e.g. with {@code mfa}). */
  JsonObject login(int hsm, JsonObject body) {
    JsonObject reply = agents.get(hsm).execute(body);
    assertNotNull(reply.getJsonObject(Principal.PROOF), "a login returns a session proof");
    return reply;
  }

  /**
   * A request as the front door forwards it: with the session's principal and proof. A change's reply
   * comes once every HSM applied it, as a front door's durability wait and routing by sequence make sure
   * for the next request (without it, a request at another HSM could meet the state before the change:
   * seen, a setMfa refused "register an approval key first" right after the key was registered elsewhere).
   */
  JsonObject call(int hsm, JsonObject session, JsonObject request) {
    JsonObject reply = callWithoutWaiting(hsm, session, request);
    Object seq = reply.getValue("seq");
    if (seq instanceof Number n) {
      for (AppliedWatch w : watches) {
        try {
          assertTrue(w.await(n.longValue(), Duration.ofSeconds(30)), "sequence " + n + " applied on every HSM");
        } catch (InterruptedException e) {
          Thread.currentThread().interrupt();
          throw new AssertionError(e);
        }
      }
    }
    return reply;
  }

  /** {@link #call} answered as soon as the HSM called has applied the change (a majority committed it). */
  JsonObject callWithoutWaiting(int hsm, JsonObject session, JsonObject request) {
    JsonObject body = request.copy().put(Principal.FIELD, Principal.toJson(session.getString("user"),
        Role.valueOf(session.getString("role")), session.getJsonObject(Principal.PROOF)));
    return agents.get(hsm).execute(body);
  }

  @Override
  public void close() {
    cluster.close();
    tokens.forEach(HsmToken::close);
  }
}
