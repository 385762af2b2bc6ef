package io.hsmbridge.pkcs11;

import static io.hsmbridge.pkcs11.TestSupport.assertHsm;
import static org.junit.jupiter.api.Assertions.*;

import io.hsmbridge.protocol.ErrorCode;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.atomic.AtomicReference;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** PIN sources: what is read, what is stripped, what is refused, and that PINs never show. */
class PinSourceTest {
  private static final String PIN = "s3cret-Pin-0815";

  @TempDir
  Path tmp;

  private Path file(String content) throws Exception {
    return Files.writeString(tmp.resolve("pin-" + Math.abs(content.hashCode())), content, StandardCharsets.UTF_8);
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "\n", "\r\n", "\n\n", "\r\n\r\n"})
  void trailingLineEndsAreStripped(String ending) throws Exception {
    assertEquals(PIN, String.valueOf(PinSource.fromFile(file(PIN + ending)).read()));
  }

  @Test
  void innerAndLeadingCharactersAreKept() throws Exception {
    assertEquals(" a b\tc", String.valueOf(PinSource.fromFile(file(" a b\tc\n")).read()));
    assertEquals("p\u00e4ss\u20ac", String.valueOf(PinSource.fromFile(file("p\u00e4ss\u20ac\n")).read()), "UTF-8");
  }

  @ParameterizedTest
  @ValueSource(strings = {"", "\n", "\r\n"})
  void emptyPinFileIsConfigInvalid(String content) throws Exception {
    Path f = file(content);
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> PinSource.fromFile(f).read());
    assertTrue(e.getMessage().contains("empty") && e.getMessage().contains(f.toString()), e.getMessage());
  }

  @Test
  void missingPinFileIsConfigInvalidNamingTheFile() {
    Path f = tmp.resolve("absent.pin");
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> PinSource.fromFile(f).read());
    assertTrue(e.getMessage().contains(f.toString()), e.getMessage());
    assertTrue(e.getMessage().contains("NoSuchFileException"), e.getMessage());
  }

  @Test
  void missingEnvironmentVariableIsConfigInvalidNamingIt() {
    String name = "HSMBRIDGE_TEST_PIN_THAT_IS_NOT_SET_" + System.nanoTime();
    assertNull(System.getenv(name));
    HsmException e = assertHsm(ErrorCode.CONFIG_INVALID, () -> PinSource.fromEnv(name).read());
    assertTrue(e.getMessage().contains(name), e.getMessage());
  }

  @Test
  void presentEnvironmentVariableIsRead() {
    // surefire always sets SOFTHSM2_CONF: any set variable will do to prove the env path works
    String value = System.getenv("SOFTHSM2_CONF");
    assertNotNull(value);
    assertEquals(value, String.valueOf(PinSource.fromEnv("SOFTHSM2_CONF").read()));
  }

  @Test
  void toStringShowsTheSourceNeverThePin() throws Exception {
    Path f = file(PIN + "\n");
    PinSource fromFile = PinSource.fromFile(f);
    fromFile.read();
    assertEquals("PinSource[file=" + f + "]", fromFile.toString());
    assertFalse(fromFile.toString().contains(PIN));
    PinSource fromEnv = PinSource.fromEnv("SOFTHSM2_CONF");
    assertEquals("PinSource[env=SOFTHSM2_CONF]", fromEnv.toString());
    assertFalse(fromEnv.toString().contains(System.getenv("SOFTHSM2_CONF")));
  }

  @Test
  void useZeroesThePinAfterwardsEvenWhenTheActionFails() throws Exception {
    PinSource s = PinSource.fromFile(file(PIN + "\n"));
    AtomicReference<char[]> seen = new AtomicReference<>();
    assertEquals(PIN.length(), (int) s.use(pin -> {
      seen.set(pin);
      assertEquals(PIN, String.valueOf(pin));
      return pin.length;
    }));
    assertArrayEquals(new char[PIN.length()], seen.get(), "not zeroed after use");

    IllegalStateException thrown = assertThrows(IllegalStateException.class, () -> s.use(pin -> {
      seen.set(pin);
      throw new IllegalStateException("token said no");
    }));
    assertEquals("token said no", thrown.getMessage());
    assertArrayEquals(new char[PIN.length()], seen.get(), "not zeroed after a failure");
  }

  @Test
  void everyReadSeesTheCurrentFile() throws Exception {
    Path f = file("first\n");
    PinSource s = PinSource.fromFile(f);
    assertEquals("first", String.valueOf(s.read()));
    Files.writeString(f, "second\n"); // a rotated PIN is picked up: nothing is cached
    assertEquals("second", String.valueOf(s.read()));
  }
}
