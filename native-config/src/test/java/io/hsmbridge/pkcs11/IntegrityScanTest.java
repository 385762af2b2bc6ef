package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.Algorithm;
import io.hsmbridge.protocol.ErrorCode;
import io.hsmbridge.protocol.KeySpec;
import io.hsmbridge.protocol.KeyUsage;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.StandardOpenOption;
import java.time.Duration;
import java.util.concurrent.TimeUnit;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;

/**
 * The start-up integrity scan against real SoftHSM2 token directories: a 0-byte object file (what a
 * crash mid-write leaves) stops start-up with TOKEN_CORRUPTED, and repair moves it to quarantine.
 */
class IntegrityScanTest {
  private static final byte[] M = {1, 2, 3};

  private static Path plantBrokenObject(String label) throws Exception {
    return SoftHsmFixture.plantEmptyObject(SoftHsmFixture.tokenDirectory(label));
  }

  private static void assertUsable(HsmToken hsm, String aes, String ec) {
    CryptoService.Encrypted e = hsm.crypto().encrypt(aes, Algorithm.AES_GCM, M, null);
    assertArrayEquals(M, hsm.crypto().decrypt(aes, Algorithm.AES_GCM, e.ciphertext(), e.iv(), null));
    assertTrue(hsm.crypto().verify(ec, Algorithm.ECDSA_SHA256, M, hsm.crypto().sign(ec, Algorithm.ECDSA_SHA256, M)));
  }

  @Test
  void brokenObjectStopsStartUpAndRepairQuarantinesIt() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("integrity");
    String aes;
    String ec;
    List<KeyInfo> keys;
    try (HsmToken hsm = HsmToken.open(config)) {
      aes = hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "aes", false).keyId();
      ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", false).keyId();
      keys = hsm.keys().list();
    }
    Path broken = plantBrokenObject(config.tokenLabel());

    HsmException e = assertHsm(ErrorCode.TOKEN_CORRUPTED, () -> HsmToken.open(config));
    assertTrue(e.getMessage().contains(broken.toString()), "names the file: " + e.getMessage());
    assertTrue(e.getMessage().contains("integrity.repair=true"), "says how to repair: " + e.getMessage());
    assertTrue(Files.exists(broken), "nothing is moved without repair");

    try (HsmToken hsm = HsmToken.open(config.withRepair(true))) {
      IntegrityScan.Report report = hsm.integrity();
      assertFalse(report.clean());
      assertTrue(report.repaired());
      assertEquals(List.of(broken), report.broken());
      assertFalse(Files.exists(broken), "still in the token directory");
      assertFalse(Files.exists(broken.resolveSibling(broken.getFileName().toString().replace(".object", ".lock"))));
      Path quarantined = report.quarantine().resolve(broken.getParent().getFileName() + "-" + broken.getFileName());
      assertTrue(Files.exists(quarantined), "not in quarantine: " + quarantined);
      assertTrue(report.quarantine().startsWith(SoftHsmFixture.root().resolve("hsmbridge-quarantine")), report.quarantine().toString());
      assertEquals(keys, hsm.keys().list());
      assertUsable(hsm, aes, ec);
    }
    // and the next start is clean without repair
    try (HsmToken hsm = HsmToken.open(config)) {
      assertTrue(hsm.integrity().clean());
      assertUsable(hsm, aes, ec);
    }
  }

  @Test
  void aBrokenObjectAppearingWhileTheTokenIsOpenIsFoundAtTheNextStart() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("integrity-live");
    String aes;
    String ec;
    Path broken;
    try (HsmToken hsm = HsmToken.open(config)) {
      aes = hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "aes", false).keyId();
      ec = hsm.keys().generate(KeySpec.EC_P256, KeyUsage.SIGN_VERIFY, "ec", false).keyId();
      broken = plantBrokenObject(config.tokenLabel());
      // SoftHSM2 2.6.1 skips a 0-byte object file when it re-indexes the directory (here: after the
      // next key generation), so the running process notices nothing; only the next start does.
      hsm.keys().generate(KeySpec.AES_128, KeyUsage.ENCRYPT_DECRYPT, "after", false);
      assertUsable(hsm, aes, ec);
      IntegrityScan.checkSearchable(hsm.pool());
      hsm.keys().reload();
      assertEquals(3, hsm.keys().count());
    }
    assertHsm(ErrorCode.TOKEN_CORRUPTED, () -> HsmToken.open(config));
    // SoftHSM2 has seen the file in this process; after the move it must not miss it
    try (HsmToken hsm = HsmToken.open(config.withRepair(true))) {
      assertEquals(List.of(broken), hsm.integrity().broken());
      assertEquals(3, hsm.keys().count());
      assertUsable(hsm, aes, ec);
      IntegrityScan.checkSearchable(hsm.pool());
    }
  }

  @Test
  void theScanLooksOnlyAtTheConfiguredTokensDirectory() throws Exception {
    // labels where one is a prefix of the other: "t-7" must not inherit the broken files of "t-77"
    String base = "prefix-" + System.nanoTime() % 100000;
    Path pins = SoftHsmFixture.root().resolve("pins");
    TokenConfig shortOne = TokenConfig.of(SoftHsmFixture.library(), base,
        PinSource.fromFile(SoftHsmFixture.writePin(pins.resolve(base + ".user"))),
        PinSource.fromFile(SoftHsmFixture.writePin(pins.resolve(base + ".so"))), true);
    TokenConfig longOne = TokenConfig.of(SoftHsmFixture.library(), base + "7",
        PinSource.fromFile(SoftHsmFixture.writePin(pins.resolve(base + "7.user"))),
        PinSource.fromFile(SoftHsmFixture.writePin(pins.resolve(base + "7.so"))), true);
    HsmToken.open(shortOne).close();
    HsmToken.open(longOne).close();
    Path broken = plantBrokenObject(longOne.tokenLabel());
    try (HsmToken hsm = HsmToken.open(shortOne)) {
      assertTrue(hsm.integrity().clean(), "reported another token's file: " + hsm.integrity().broken());
    }
    try (HsmToken hsm = HsmToken.open(shortOne.withRepair(true))) {
      assertTrue(hsm.integrity().clean());
    }
    assertTrue(Files.exists(broken), "repair of one token moved another token's file");
    assertHsm(ErrorCode.TOKEN_CORRUPTED, () -> HsmToken.open(longOne));
    try (HsmToken hsm = HsmToken.open(longOne.withRepair(true))) {
      assertEquals(List.of(broken), hsm.integrity().broken());
    }
  }

  /**
   * What a tool that opens a token an agent is serving sees (ClusterScenarioTest's tamper process failed so):
   * another process stores an object the way SoftHSM2 does — fcntl write lock, truncate, write again — and the
   * file is empty while it works. The scan waits for the writer instead of calling the file broken.
   */
  @Test
  void anObjectFileAnotherProcessIsRewritingIsNotReported() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("integrity-writer");
    Path object = oneKeyObjectFile(config);
    byte[] content = Files.readAllBytes(object);
    Process writer = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
        "-cp", System.getProperty("java.class.path"), SoftHsmLikeWriter.class.getName(), object.toString(), "700")
        .redirectErrorStream(true).start();
    try {
      String ready = new String(writer.getInputStream().readNBytes(6), StandardCharsets.UTF_8);
      assertEquals("READY\n", ready, "the writer holds the file's lock");
      assertEquals(0, Files.size(object), "the file is empty while the writer works");
      long t0 = System.nanoTime();
      try (HsmToken hsm = HsmToken.open(config)) {
        assertTrue(hsm.integrity().clean(), "reported a file being written: " + hsm.integrity().broken());
        assertEquals(1, hsm.keys().count());
      }
      assertTrue(Duration.ofNanos(System.nanoTime() - t0).toMillis() >= 300, "the scan waited for the writer");
      assertTrue(writer.waitFor(10, TimeUnit.SECONDS));
      assertEquals(0, writer.exitValue());
      assertArrayEquals(content, Files.readAllBytes(object));
    } finally {
      writer.destroyForcibly();
    }
  }

  /** SoftHSM2 creates a new object's file empty and only then locks and writes it: a short empty moment. */
  @Test
  void aNewObjectFileThatIsWrittenSoonAfterItAppearsIsNotReported() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("integrity-new");
    byte[] content = Files.readAllBytes(oneKeyObjectFile(config));
    Path appearing = plantBrokenObject(config.tokenLabel());
    Thread writer = new Thread(() -> {
      try {
        Thread.sleep(60);
        Files.write(appearing, content);
      } catch (Exception e) {
        throw new IllegalStateException(e);
      }
    });
    writer.start();
    IntegrityScan.Report report = IntegrityScan.scanSoftHsmFiles(config.tokenLabel(), false);
    writer.join();
    assertTrue(report.clean(), "reported a file written 60 ms after it appeared: " + report.broken());
    Files.delete(appearing);
  }

  /** Makes one AES key on the new token of {@code config} and returns its object file. */
  private static Path oneKeyObjectFile(TokenConfig config) throws Exception {
    try (HsmToken hsm = HsmToken.open(config)) {
      hsm.keys().generate(KeySpec.AES_256, KeyUsage.ENCRYPT_DECRYPT, "one", false);
    }
    try (Stream<Path> files = Files.list(SoftHsmFixture.tokenDirectory(config.tokenLabel()))) {
      List<Path> objects = files.filter(f -> f.toString().endsWith(".object") && !f.endsWith("token.object")).toList();
      assertEquals(1, objects.size(), "one key object: " + objects);
      return objects.get(0);
    }
  }

  /**
   * Run in its own JVM (fcntl locks are per process): locks an object file for writing, truncates it, says
   * READY, waits, writes the content back and lets go — SoftHSM2's ObjectFile::store in slow motion.
   */
  public static final class SoftHsmLikeWriter {
    public static void main(String[] args) throws Exception {
      Path file = Path.of(args[0]);
      byte[] content = Files.readAllBytes(file);
      try (FileChannel channel = FileChannel.open(file, StandardOpenOption.READ, StandardOpenOption.WRITE);
           FileLock lock = channel.lock()) {
        channel.truncate(0);
        System.out.print("READY\n");
        System.out.flush();
        Thread.sleep(Long.parseLong(args[1]));
        channel.write(ByteBuffer.wrap(content), 0);
        channel.force(true);
      }
    }
  }

  @Test
  void nonEmptyObjectFilesAreNotReported() throws Exception {
    TokenConfig config = SoftHsmFixture.newToken("integrity-clean");
    try (HsmToken hsm = HsmToken.open(config)) {
      hsm.keys().generate(KeySpec.HMAC_SHA256, KeyUsage.SIGN_VERIFY, "h", false);
    }
    try (Stream<Path> files = Files.list(SoftHsmFixture.tokenDirectory(config.tokenLabel()))) {
      assertTrue(files.anyMatch(f -> f.toString().endsWith(".object") && !f.endsWith("token.object")));
    }
    try (HsmToken hsm = HsmToken.open(config.withRepair(true))) {
      assertTrue(hsm.integrity().clean());
      assertFalse(hsm.integrity().repaired());
      assertEquals(1, hsm.keys().count());
    }
  }
}
