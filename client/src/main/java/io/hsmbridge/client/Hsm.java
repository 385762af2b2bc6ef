package io.hsmbridge.client;

import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import io.hsmbridge.protocol.Op;
import io.hsmbridge.protocol.Role;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import java.security.PrivateKey;
import java.util.ArrayList;
import java.util.Base64;
import java.util.Collections;
import java.util.List;
import java.util.Objects;
import java.util.concurrent.atomic.AtomicReference;
import java.util.function.Consumer;

/**
 * A typed facade over the protocol (docs/protocol.md, docs/users.md): one method per operation, bytes in
 * and out, base64 on the wire. Thread-safe when its {@link RequestSender} is ({@link BridgeClient} is).
 *
 * <p>Sessions: after {@link #login} (or {@link #useSession}) every request carries the session token in
 * its {@code session} field; only {@code health}, {@code cluster.status} and the login itself work without
 * one. The token is never part of a message or {@code toString()}.
 *
 * <p>Quorum: an operation protected by an M-of-N quorum runs through {@link #withQuorum}, a view whose
 * requests carry the approvals; {@link #requestBody} gives the body to ask a {@link #quorumToken} for.
 *
 * <p>Every method throws {@link HsmBridgeException} on failure. Decrypt and unwrap failures are the
 * opaque {@code CRYPTO_FAILURE}; a signature or MAC that does not match is {@code false}, not an error.
 * Algorithm names ({@code alg}) are the protocol's strings, e.g. {@code "AES_GCM"}, {@code "ED25519"}.
 */
public final class Hsm implements AutoCloseable {
  /** Fields that are not part of an operation as a quorum token pins it (the server hashes the rest). */
  private static final List<String> NOT_PART_OF_THE_OPERATION = List.of("session", "quorum", "requestId", "onHsm");

  private final RequestSender sender;
  private final AutoCloseable owned;
  /** Shared with every view ({@link #withQuorum}) of this facade: a login there is a login here. */
  private final AtomicReference<String> session;
  /** The {@code quorum} field every request of this view carries, or null. */
  private final JsonObject quorum;
  /** The {@code requestId} every mutation of this view carries (see {@link #withRequestId}), or null. */
  private final String requestId;

  /** Uses a sender it does not own: {@link #close()} leaves it open. */
  public Hsm(RequestSender sender) {
    this(sender, null, new AtomicReference<>(), null);
  }

  private Hsm(RequestSender sender, AutoCloseable owned, AtomicReference<String> session, JsonObject quorum) {
    this(sender, owned, session, quorum, null);
  }

  private Hsm(RequestSender sender, AutoCloseable owned, AtomicReference<String> session, JsonObject quorum,
      String requestId) {
    this.sender = Objects.requireNonNull(sender, "sender");
    this.owned = owned;
    this.session = session;
    this.quorum = quorum;
    this.requestId = requestId;
  }

  /** Connects a new plaintext {@link BridgeClient} (a loopback endpoint with {@code bridge.tls=false}) that this facade owns. */
  public static Hsm connect(String host, int port) {
    return owning(BridgeClient.connect(host, port));
  }

  /** Connects a new {@link BridgeClient} over TLS, pinning the CA of {@code tls}; this facade owns it. */
  public static Hsm connect(String host, int port, ClientTls tls) {
    return owning(BridgeClient.connect(host, port, BridgeClient.DEFAULT_TIMEOUT, tls));
  }

  /**
   * Connects to the first of {@code endpoints} that answers, over TLS pinning the CA of {@code tls} (null:
   * plaintext, loopback only), with failover and retries: a lost connection is made again to the next
   * endpoint that answers, and a request without a definite answer (timeout, lost in flight, no HSM now)
   * is sent again with the same {@code requestId} when that cannot do it twice ({@link RetryingSender}).
   * It learns the cluster's other front doors from the first it reaches. Sessions are cluster state: the
   * session is served by every front door and survives their restarts.
   */
  public static Hsm connect(List<FailoverSender.Endpoint> endpoints, ClientTls tls) {
    FailoverSender failover = new FailoverSender(endpoints, BridgeClient.DEFAULT_TIMEOUT, tls);
    return owning(new RetryingSender(failover), failover);
  }

  /** Wraps a sender and takes ownership of {@code resource} (closed with this facade). */
  public static Hsm owning(RequestSender sender, AutoCloseable resource) {
    return new Hsm(sender, resource, new AtomicReference<>(), null);
  }

  /**
   * A view of this facade (same connection, same session) whose mutations carry {@code requestId}: one
   * mutation per view, e.g. a script's creation that must be the same creation when the script is run
   * again (the CLI's {@code --request-id}). At most 64 characters.
   */
  public Hsm withRequestId(String id) {
    if (id == null || id.isEmpty() || id.length() > 64) {
      throw new IllegalArgumentException("a requestId is 1 to 64 characters");
    }
    return new Hsm(sender, null, session, quorum, id);
  }

  /** Wraps a client and takes ownership of it. */
  public static Hsm owning(BridgeClient client) {
    Objects.requireNonNull(client, "client");
    return new Hsm(client, client, new AtomicReference<>(), null);
  }

  // ---- sessions ----

  /**
   * Logs in ({@code auth.login}) and sends the session token with every later request.
   *
   * @param password not kept: the caller may clear the array afterwards
   * @throws HsmBridgeException LOGIN_FAILED (wrong name or password), USER_LOCKED
   */
  public Session login(String user, char[] password) {
    return login(credentials(user, password));
  }

  /**
   * Logs in with a second factor: asks for a challenge ({@code auth.challenge}), signs its bytes with the
   * user's registered RSA key (SHA256withRSA) and sends both with the password.
   */
  public Session loginWithMfa(String user, char[] password, PrivateKey key) {
    Objects.requireNonNull(key, "key");
    JsonObject c = call(Op.AUTH_CHALLENGE, new JsonObject().put("user", Objects.requireNonNull(user, "user")));
    byte[] challenge = Replies.bytes(c, "challenge");
    String signature = Base64.getEncoder().encodeToString(QuorumApproval.signBytes(challenge, key));
    return login(credentials(user, password)
        .put("mfa", new JsonObject().put("challengeId", Replies.string(c, "challengeId")).put("signature", signature)));
  }

  private Session login(JsonObject credentials) {
    JsonObject r = call(Op.AUTH_LOGIN, credentials);
    Session s = new Session(Replies.string(r, "session"), Replies.string(r, "user"), Replies.string(r, "role"),
        Replies.longValue(r, "expiresAt"));
    session.set(s.token());
    return s;
  }

  private static JsonObject credentials(String user, char[] password) {
    return new JsonObject().put("user", Objects.requireNonNull(user, "user"))
        .put("password", new String(Objects.requireNonNull(password, "password")));
  }

  /** Sends this session token (e.g. one kept in a session file) with every later request; null for none. */
  public void useSession(String token) {
    session.set(token);
  }

  /** Whether requests carry a session token. */
  public boolean hasSession() {
    return session.get() != null;
  }

  /** Ends the session at the bridge ({@code auth.logout}); later requests carry none, even if this fails. */
  public void logout() {
    try {
      call(Op.AUTH_LOGOUT, new JsonObject());
    } finally {
      session.set(null);
    }
  }

  /** {@code user}, {@code role} and {@code expiresAt} of the current session. */
  public JsonObject whoami() {
    return call(Op.AUTH_WHOAMI, new JsonObject());
  }

  // ---- users and quorum (docs/users.md) ----

  /**
   * PRECO only: activates a new cluster by setting the first admin's password. The PRECO session is
   * useless afterwards: log in as {@code admin} with the new password.
   *
   * @return {@code user} ("admin"), {@code role} ("CO"), {@code activated}
   */
  public JsonObject activate(char[] newAdminPassword) {
    return call(Op.CLUSTER_ACTIVATE,
        new JsonObject().put("password", new String(Objects.requireNonNull(newAdminPassword, "password"))));
  }

  /** CO: creates a crypto officer or crypto user. */
  public void createUser(String name, Role role, char[] password) {
    if (role != Role.CO && role != Role.CU) {
      throw new IllegalArgumentException("a user is created as CO or CU");
    }
    call(Op.USER_CREATE, name(name).put("role", role.name())
        .put("password", new String(Objects.requireNonNull(password, "password"))));
  }

  /** CO: deletes a user (never the last CO: the server refuses). */
  public void deleteUser(String name) {
    call(Op.USER_DELETE, name(name));
  }

  /** CO: every user and the admin quorum value. */
  public Users listUsers() {
    JsonObject r = call(Op.USER_LIST, new JsonObject());
    List<UserInfo> users = new ArrayList<>();
    for (Object u : Replies.array(r, "users")) {
      if (!(u instanceof JsonObject o)) {
        throw new HsmBridgeException(ErrorCode.INTERNAL, "malformed reply: 'users' holds a non-object");
      }
      users.add(UserInfo.fromJson(o));
    }
    return new Users(users, (int) Replies.longValue(r, "adminQuorum", 1));
  }

  /** CO: any user's password; CU: its own. */
  public void changePassword(String name, char[] password) {
    call(Op.USER_CHANGE_PASSWORD, name(name).put("password", new String(Objects.requireNonNull(password, "password"))));
  }

  /** CO: unlocks a user locked after failed logins (and resets the count). */
  public void unlockUser(String name) {
    call(Op.USER_UNLOCK, name(name));
  }

  /**
   * Registers the caller's public key for quorum approvals and MFA.
   *
   * @param spki DER SubjectPublicKeyInfo of an RSA key of at least 2048 bits
   */
  public void registerApprovalKey(byte[] spki) {
    call(Op.USER_REGISTER_KEY, new JsonObject().put("spki", Replies.b64(Objects.requireNonNull(spki, "spki"))));
  }

  /** CO, for itself: require a signed challenge at login (needs a registered key). */
  public void setMfa(boolean enabled) {
    call(Op.USER_SET_MFA, new JsonObject().put("enabled", enabled));
  }

  /** CO: how many approvals the admin services need (1..8; 1 = no quorum). */
  public void setAdminQuorum(int value) {
    call(Op.QUORUM_SET, new JsonObject().put("service", "admin").put("value", value));
  }

  /**
   * Asks for a quorum token for exactly {@code operation} (a full request body with its {@code op}, see
   * {@link #requestBody}); {@code session}, {@code quorum} and {@code requestId} are left out.
   *
   * @param ttlSeconds 1..3600; 0 for the server's default (600)
   */
  public QuorumToken quorumToken(JsonObject operation, int ttlSeconds) {
    JsonObject req = new JsonObject().put("operation", operationOf(operation));
    if (ttlSeconds != 0) {
      req.put("ttlSeconds", ttlSeconds);
    }
    return QuorumToken.fromJson(call(Op.QUORUM_TOKEN, req));
  }

  /**
   * A view of this facade (same connection and session) whose requests carry these approvals in their
   * {@code quorum} field; send it exactly the operation the token was issued for.
   */
  public Hsm withQuorum(String tokenId, List<QuorumApproval> approvals) {
    return new Hsm(sender, null, session, QuorumApproval.quorumField(tokenId, approvals), requestId);
  }

  /**
   * The request body {@code call} would send, without sending anything: e.g.
   * {@code requestBody(h -> h.delete(keyId))} for {@link #quorumToken}. {@code call} must send exactly one
   * request; what it does after that (with the reply) never runs.
   */
  public JsonObject requestBody(Consumer<Hsm> call) {
    JsonObject body;
    try {
      body = firstRequestOf(call::accept);
    } catch (RuntimeException e) {
      throw e;
    } catch (Exception e) {
      throw new IllegalStateException("a Consumer threw a checked exception", e); // cannot happen
    }
    if (body == null) {
      throw new IllegalArgumentException("the call sent no request");
    }
    return body;
  }

  /**
   * Like {@link #requestBody} for a call that may throw checked exceptions: returns the body of its first
   * request, or null when it sent none (and then it ran to its end).
   */
  public JsonObject firstRequestOf(Call call) throws Exception {
    Hsm capturing = new Hsm(body -> {
      throw new Captured(operationOf(body));
    }, null, session, null);
    try {
      call.run(capturing);
      return null;
    } catch (Captured c) {
      return c.body;
    }
  }

  /** A call against a facade that may throw checked exceptions (see {@link #firstRequestOf}). */
  @FunctionalInterface
  public interface Call {
    void run(Hsm hsm) throws Exception;
  }

  /** Thrown by the capturing sender of {@link #firstRequestOf}: stops the call at its first request. */
  private static final class Captured extends RuntimeException {
    private static final long serialVersionUID = 1L;
    private final transient JsonObject body;

    Captured(JsonObject body) {
      super("request captured", null, false, false);
      this.body = body;
    }
  }

  /**
   * Sends a complete request body (with its {@code op}), adding the session and this view's quorum: for
   * operations this facade has no method for, or bodies built elsewhere.
   */
  public JsonObject send(JsonObject body) {
    Objects.requireNonNull(body, "body");
    if (!(body.getValue("op") instanceof String)) {
      throw new IllegalArgumentException("the request body needs an 'op'");
    }
    return sender.request(decorate(body.copy()));
  }

  /** The body without the fields a quorum token does not pin. */
  private static JsonObject operationOf(JsonObject body) {
    JsonObject o = body.copy();
    NOT_PART_OF_THE_OPERATION.forEach(o::remove);
    return o;
  }

  // ---- keys ----

  /**
   * CU, owner: lets {@code user} use the key (crypto, describe, public key), not manage it.
   *
   * @return the key's description with {@code owner} and {@code sharedWith}
   */
  public KeyInfo shareKey(String keyId, String user) {
    return KeyInfo.fromJson(call(Op.KEY_SHARE, key(keyId).put("user", Objects.requireNonNull(user, "user"))));
  }

  /** CU, owner: takes a share back. */
  public KeyInfo unshareKey(String keyId, String user) {
    return KeyInfo.fromJson(call(Op.KEY_UNSHARE, key(keyId).put("user", Objects.requireNonNull(user, "user"))));
  }

  /**
   * CU, owner: how many approvals the key's management operations (delete, relabel, wrap, share, unshare,
   * quorum) and its crypto operations need, 1..8 each (1 = no quorum).
   *
   * @return {@code keyId}, {@code management}, {@code usage}
   */
  public JsonObject setKeyQuorum(String keyId, int management, int usage) {
    return call(Op.KEY_SET_QUORUM, key(keyId).put("management", management).put("usage", usage));
  }

  /** The health report of the HSM that served the request (fields as in protocol.md). */
  public JsonObject health() {
    return call(Op.HEALTH, new JsonObject());
  }

  /**
   * Generates a key inside the HSM.
   *
   * @param usage null for the spec's default usage
   * @param exportable whether {@link #wrap} may export the key under a user wrapping key
   */
  public KeyInfo generateKey(KeySpec spec, String label, KeyUsage usage, boolean exportable) {
    JsonObject req = new JsonObject()
        .put("spec", Objects.requireNonNull(spec, "spec").name())
        .put("label", Objects.requireNonNull(label, "label"))
        .put("exportable", exportable);
    if (usage != null) {
      req.put("usage", usage.name());
    }
    return KeyInfo.fromJson(call(Op.KEY_GENERATE, req));
  }

  /** Every key visible to the caller. */
  public List<KeyInfo> listKeys() {
    return listKeys(null);
  }

  /** Keys whose label equals {@code label} exactly; null lists all. */
  public List<KeyInfo> listKeys(String label) {
    JsonObject req = new JsonObject();
    if (label != null) {
      req.put("label", label);
    }
    JsonArray keys = Replies.array(call(Op.KEY_LIST, req), "keys");
    List<KeyInfo> out = new ArrayList<>(keys.size());
    for (Object k : keys) {
      if (!(k instanceof JsonObject o)) {
        throw new HsmBridgeException(ErrorCode.INTERNAL,
            "malformed reply: 'keys' holds a non-object");
      }
      out.add(KeyInfo.fromJson(o));
    }
    return Collections.unmodifiableList(out);
  }

  public KeyInfo describe(String keyId) {
    return KeyInfo.fromJson(call(Op.KEY_DESCRIBE, key(keyId)));
  }

  /** Deletes the key; UNKNOWN_KEY when there is none. */
  public void delete(String keyId) {
    call(Op.KEY_DELETE, key(keyId));
  }

  public KeyInfo setLabel(String keyId, String label) {
    return KeyInfo.fromJson(call(Op.KEY_SET_LABEL, key(keyId).put("label", Objects.requireNonNull(label))));
  }

  /** The public key of an RSA/EC/Ed25519 key pair as DER SubjectPublicKeyInfo. */
  public byte[] publicKey(String keyId) {
    return Replies.bytes(call(Op.KEY_PUBLIC, key(keyId)), "spki");
  }

  /**
   * CU, owner: stores an X.509 certificate chain beside an RSA, EC or Ed25519 key on every HSM (what a
   * KeyStore's {@code getCertificateChain} then returns), replacing the one it had; an empty list removes it.
   * The HSM checks that every entry is one DER certificate and that the leaf (entry 0) carries the key's
   * public key; it does not check signatures or dates.
   *
   * @param derChain DER certificates, leaf first: 0..10, each at most 16 KiB, 64 KiB in all
   * @return the cluster's log sequence of the change (0 from an agent without a cluster); reads through
   *     the same front door see the change
   * @throws HsmBridgeException INVALID_PARAMETER for a chain over the bounds, an entry that is not a DER
   *     certificate or a leaf of another key; WRONG_KEY_TYPE for an AES or HMAC key; ACCESS_DENIED when the
   *     caller does not own the key
   */
  public long setCertificates(String keyId, List<byte[]> derChain) {
    JsonArray chain = new JsonArray();
    for (byte[] der : Objects.requireNonNull(derChain, "derChain")) {
      chain.add(Replies.b64(Objects.requireNonNull(der, "certificate")));
    }
    return Replies.longValue(call(Op.KEY_SET_CERTIFICATES, key(keyId).put("certificates", chain)), "seq", 0);
  }

  /**
   * CU, owner or a user the key is shared with: the certificate chain stored beside the key, DER, leaf
   * first; empty when it has none.
   */
  public List<byte[]> certificates(String keyId) {
    JsonArray chain = Replies.array(call(Op.KEY_CERTIFICATES, key(keyId)), "certificates");
    List<byte[]> out = new ArrayList<>(chain.size());
    for (Object v : chain) {
      if (!(v instanceof String s)) {
        throw new HsmBridgeException(ErrorCode.INTERNAL, "malformed reply: 'certificates' holds a non-string");
      }
      try {
        out.add(Base64.getDecoder().decode(s));
      } catch (IllegalArgumentException e) {
        throw new HsmBridgeException(ErrorCode.INTERNAL, "malformed reply: 'certificates' holds a non-base64 entry");
      }
    }
    return Collections.unmodifiableList(out);
  }

  /**
   * Encrypts with {@code AES_GCM}, {@code AES_CBC_PAD} or {@code RSA_OAEP}.
   *
   * @param aad additional authenticated data (AES_GCM only), or null
   */
  public Ciphertext encrypt(String keyId, String alg, byte[] plaintext, byte[] aad) {
    JsonObject req = key(keyId).put("alg", alg).put("plaintext", Replies.b64(plaintext));
    if (aad != null) {
      req.put("aad", Replies.b64(aad));
    }
    JsonObject r = call(Op.ENCRYPT, req);
    return new Ciphertext(Replies.bytes(r, "ciphertext"), Replies.optBytes(r, "iv"));
  }

  /** Decrypts; any failure of integrity or padding is CRYPTO_FAILURE. {@code iv}/{@code aad} may be null. */
  public byte[] decrypt(String keyId, String alg, byte[] ciphertext, byte[] iv, byte[] aad) {
    JsonObject req = key(keyId).put("alg", alg).put("ciphertext", Replies.b64(ciphertext));
    if (iv != null) {
      req.put("iv", Replies.b64(iv));
    }
    if (aad != null) {
      req.put("aad", Replies.b64(aad));
    }
    return Replies.bytes(call(Op.DECRYPT, req), "plaintext");
  }

  /** Decrypts the result of {@link #encrypt}. */
  public byte[] decrypt(String keyId, String alg, Ciphertext c, byte[] aad) {
    return decrypt(keyId, alg, c.ciphertext(), c.iv(), aad);
  }

  public byte[] sign(String keyId, String alg, byte[] message) {
    return Replies.bytes(call(Op.SIGN, message(keyId, alg, message)), "signature");
  }

  public boolean verify(String keyId, String alg, byte[] message, byte[] signature) {
    JsonObject req = message(keyId, alg, message).put("signature", Replies.b64(signature));
    return Replies.bool(call(Op.VERIFY, req), "valid");
  }

  public byte[] mac(String keyId, String alg, byte[] message) {
    return Replies.bytes(call(Op.MAC, message(keyId, alg, message)), "mac");
  }

  public boolean macVerify(String keyId, String alg, byte[] message, byte[] mac) {
    JsonObject req = message(keyId, alg, message).put("mac", Replies.b64(mac));
    return Replies.bool(call(Op.MAC_VERIFY, req), "valid");
  }

  /** A digest computed by the HSM: {@code SHA256}, {@code SHA384} or {@code SHA512}. */
  public byte[] digest(String alg, byte[] message) {
    JsonObject req = new JsonObject().put("alg", alg).put("message", Replies.b64(message));
    return Replies.bytes(call(Op.DIGEST, req), "digest");
  }

  /** {@code length} (1..4096) bytes from the token's RNG. */
  public byte[] random(int length) {
    return Replies.bytes(call(Op.RANDOM, new JsonObject().put("length", length)), "random");
  }

  /** Exports an exportable key wrapped under another key ({@code AES_KEY_WRAP_PAD} or {@code RSA_OAEP}). */
  public byte[] wrap(String keyId, String wrappingKeyId, String alg) {
    JsonObject req = key(keyId).put("wrappingKeyId", wrappingKeyId).put("alg", alg);
    return Replies.bytes(call(Op.KEY_WRAP, req), "wrapped");
  }

  /** Imports a wrapped key as a new key; {@code usage} null for the spec's default. */
  public KeyInfo importWrapped(String wrappingKeyId, String alg, byte[] wrapped, KeySpec spec,
      String label, KeyUsage usage, boolean exportable) {
    JsonObject req = new JsonObject()
        .put("wrappingKeyId", wrappingKeyId)
        .put("alg", alg)
        .put("wrapped", Replies.b64(wrapped))
        .put("spec", Objects.requireNonNull(spec, "spec").name())
        .put("label", label)
        .put("exportable", exportable);
    if (usage != null) {
      req.put("usage", usage.name());
    }
    return KeyInfo.fromJson(call(Op.KEY_IMPORT_WRAPPED, req));
  }

  /** Closes the underlying client when this facade owns it. */
  @Override
  public void close() {
    if (owned != null) {
      try {
        owned.close();
      } catch (Exception e) {
        // BridgeClient.close() does not throw; nothing else is ever owned.
      }
    }
  }

  private JsonObject call(Op op, JsonObject req) {
    req.put("op", op.wire());
    // A login carries no old session: it is how a session starts.
    return sender.request(op == Op.AUTH_LOGIN || op == Op.AUTH_CHALLENGE ? req : decorate(req));
  }

  private JsonObject decorate(JsonObject req) {
    String token = session.get();
    if (token != null) {
      req.put("session", token);
    }
    if (quorum != null) {
      req.put("quorum", quorum.copy());
    }
    if (requestId != null && req.getValue("op") instanceof String w && Op.fromWire(w) != null
        && Op.fromWire(w).isMutation()) {
      req.put("requestId", requestId);
    }
    return req;
  }

  private static JsonObject name(String name) {
    return new JsonObject().put("name", Objects.requireNonNull(name, "name"));
  }

  private static JsonObject key(String keyId) {
    return new JsonObject().put("keyId", Objects.requireNonNull(keyId, "keyId"));
  }

  private static JsonObject message(String keyId, String alg, byte[] message) {
    return key(keyId).put("alg", Objects.requireNonNull(alg, "alg")).put("message", Replies.b64(message));
  }
}
