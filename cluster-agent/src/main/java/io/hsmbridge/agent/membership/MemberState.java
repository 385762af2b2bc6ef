package io.hsmbridge.agent.membership;

import io.vertx.core.buffer.Buffer;
import io.vertx.core.json.DecodeException;
import io.vertx.core.json.JsonArray;
import io.vertx.core.json.JsonObject;
import io.vertx.core.spi.cluster.NodeInfo;
import io.vertx.core.spi.cluster.RegistrationInfo;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;

/**
 * What one member says about itself, and nothing else: its node id, the address of its membership port,
 * its event-bus address ({@link NodeInfo}) and the event-bus addresses it consumes. Each member is the only
 * source of its own state and sends all of it, every time (a {@link #version} orders the copies), so a
 * receiver replaces what it held instead of merging: nothing another member says can remove or add a
 * registration of this one, and a lost update heals with the next copy.
 *
 * <p>Received states come from authenticated members but are still bounded and checked field by field
 * ({@link #decode}): a malformed state closes the link, it never reaches Vert.x.
 *
 * @param cluster the cluster's name: a state of another cluster is refused
 * @param nodeId the member's Vert.x node id (random per process)
 * @param memberAddress where its membership port listens ({@code host:port}); others dial it
 * @param version increases with every change of this member's state
 * @param nodeInfo its event-bus address, null until its event bus started
 * @param registrations event-bus address → the consumers this member has for it (never local-only ones)
 * @param peers membership addresses this member knows, so that a newcomer learns the whole cluster
 */
record MemberState(String cluster, String nodeId, String memberAddress, long version, NodeInfo nodeInfo,
    Map<String, List<RegistrationInfo>> registrations, List<String> peers) {

  /** A state larger than this is refused (a cluster's routing table is a few KiB). */
  static final int MAX_ENCODED_BYTES = 1 << 20;
  static final int MAX_REGISTRATIONS = 10_000;
  static final int MAX_PEERS = 64;
  static final int MAX_ADDRESS_CHARS = 1_024;
  private static final Pattern CLUSTER = Pattern.compile("[A-Za-z0-9_.-]{1,64}");
  private static final Pattern NODE_ID = Pattern.compile("[A-Za-z0-9-]{1,64}");
  private static final Pattern MEMBER = Pattern.compile("(\\[[0-9A-Fa-f:.]{2,45}]|[A-Za-z0-9._-]{1,253}):[0-9]{1,5}");

  MemberState {
    registrations = Map.copyOf(registrations);
    peers = List.copyOf(peers);
  }

  Buffer encode() {
    JsonObject regs = new JsonObject();
    registrations.forEach((address, infos) -> {
      JsonArray seqs = new JsonArray();
      infos.forEach(r -> seqs.add(r.seq()));
      regs.put(address, seqs);
    });
    JsonObject json = new JsonObject()
        .put("cluster", cluster)
        .put("node", nodeId)
        .put("member", memberAddress)
        .put("version", version)
        .put("registrations", regs)
        .put("peers", new JsonArray(new ArrayList<>(peers)));
    if (nodeInfo != null) {
      json.put("eventBus", new JsonObject().put("host", nodeInfo.host()).put("port", nodeInfo.port()));
    }
    return json.toBuffer();
  }

  /**
   * @throws IllegalArgumentException naming the first field that is missing, malformed or over its bound
   */
  static MemberState decode(Buffer bytes) {
    if (bytes.length() > MAX_ENCODED_BYTES) {
      throw new IllegalArgumentException("member state of " + bytes.length() + " bytes exceeds " + MAX_ENCODED_BYTES);
    }
    JsonObject json;
    try {
      json = new JsonObject(bytes);
    } catch (DecodeException | ClassCastException e) {
      throw new IllegalArgumentException("member state is not a JSON object");
    }
    try {
      String cluster = checked(json.getString("cluster"), CLUSTER, "cluster");
      String nodeId = checked(json.getString("node"), NODE_ID, "node");
      String member = checked(json.getString("member"), MEMBER, "member");
      Long version = json.getLong("version");
      if (version == null || version < 0) {
        throw new IllegalArgumentException("member state has no valid version");
      }
      NodeInfo info = null;
      JsonObject eb = json.getJsonObject("eventBus");
      if (eb != null) {
        String host = eb.getString("host");
        Integer port = eb.getInteger("port");
        if (host == null || host.isEmpty() || host.length() > 253 || port == null || port < 1 || port > 65535) {
          throw new IllegalArgumentException("member state has an invalid eventBus address");
        }
        info = new NodeInfo(host, port, null);
      }
      JsonObject regs = json.getJsonObject("registrations");
      if (regs == null) {
        throw new IllegalArgumentException("member state has no registrations");
      }
      Map<String, List<RegistrationInfo>> registrations = new LinkedHashMap<>();
      int total = 0;
      for (String address : regs.fieldNames()) {
        if (address.isEmpty() || address.length() > MAX_ADDRESS_CHARS) {
          throw new IllegalArgumentException("member state has an event-bus address of " + address.length() + " chars");
        }
        List<RegistrationInfo> infos = new ArrayList<>();
        for (Object seq : regs.getJsonArray(address)) {
          if (!(seq instanceof Number n) || ++total > MAX_REGISTRATIONS) {
            throw new IllegalArgumentException("member state has more than " + MAX_REGISTRATIONS
                + " registrations or a sequence that is not a number");
          }
          infos.add(new RegistrationInfo(nodeId, n.longValue(), false));
        }
        registrations.put(address, List.copyOf(infos));
      }
      JsonArray peerArray = json.getJsonArray("peers");
      if (peerArray == null || peerArray.size() > MAX_PEERS) {
        throw new IllegalArgumentException("member state has no peers list or more than " + MAX_PEERS);
      }
      List<String> peers = new ArrayList<>();
      for (Object p : peerArray) {
        peers.add(checked(p instanceof String s ? s : null, MEMBER, "peers"));
      }
      return new MemberState(cluster, nodeId, member, version, info, registrations, peers);
    } catch (ClassCastException e) {
      throw new IllegalArgumentException("member state has a field of the wrong type");
    }
  }

  private static String checked(String value, Pattern pattern, String field) {
    if (value == null || !pattern.matcher(value).matches()) {
      throw new IllegalArgumentException("member state has no valid '" + field + "'");
    }
    return value;
  }

  /** Whether {@code address} can be dialled as a member (host:port, IPv6 in brackets). */
  static boolean isMemberAddress(String address) {
    return address != null && MEMBER.matcher(address).matches();
  }
}
