package io.hsmbridge.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class EndpointTest {
  @TempDir
  Path dir;

  @Test
  void parsesHostPort() {
    assertEquals(new Endpoint("127.0.0.1", 7701, 0, null), Endpoint.parse("127.0.0.1:7701"));
    assertEquals(new Endpoint("::1", 7701, 0, null), Endpoint.parse("[::1]:7701"));
    assertEquals("[::1]:7701", Endpoint.parse("[::1]:7701").hostPort());
    assertThrows(IllegalArgumentException.class, () -> Endpoint.parse("host"));
    assertThrows(IllegalArgumentException.class, () -> Endpoint.parse("host:"));
    assertThrows(IllegalArgumentException.class, () -> Endpoint.parse(":1"));
    assertThrows(IllegalArgumentException.class, () -> Endpoint.parse("h:0"));
    assertThrows(IllegalArgumentException.class, () -> Endpoint.parse("h:x"));
  }

  @Test
  void readsTheNodesFileAndIgnoresPartialOrMissingOnes() throws IOException {
    Path f = dir.resolve("endpoint.json");
    assertTrue(Endpoint.read(f).isEmpty());
    Files.writeString(f, "{\"host\":\"127.0.0.1\",\"port\":7701,\"pid\":123,\"hsmId\":\"hsm1\"}");
    assertEquals(new Endpoint("127.0.0.1", 7701, 123, "hsm1"), Endpoint.read(f).orElseThrow());
    Files.writeString(f, "{\"host\":\"127.0.0.1\",\"po");
    assertTrue(Endpoint.read(f).isEmpty());
    Files.writeString(f, "{\"host\":\"127.0.0.1\",\"port\":0}");
    assertTrue(Endpoint.read(f).isEmpty());
  }

  @Test
  void aBridgeFileIsAClientEndpointAnAgentFileOnlyHasAPid() throws IOException {
    Path f = dir.resolve("endpoint.json");
    assertEquals(0, Endpoint.readPid(f));
    Files.writeString(f, "{\"role\":\"bridge\",\"host\":\"127.0.0.1\",\"port\":7701,\"pid\":124}");
    assertEquals(new Endpoint("127.0.0.1", 7701, 124, null), Endpoint.read(f).orElseThrow());
    assertEquals(124, Endpoint.readPid(f));
    Files.writeString(f, "{\"role\":\"agent\",\"hsmId\":\"hsm2\",\"pid\":123}");
    assertTrue(Endpoint.read(f).isEmpty(), "an agent serves no clients");
    assertEquals(123, Endpoint.readPid(f));
    Files.writeString(f, "{\"role\":\"agent\",\"hsmId\":\"hsm2\",\"pi");
    assertEquals(0, Endpoint.readPid(f));
  }
}
