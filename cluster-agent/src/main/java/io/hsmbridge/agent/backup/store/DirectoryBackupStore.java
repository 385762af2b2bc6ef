package io.hsmbridge.agent.backup.store;

import io.hsmbridge.pkcs11.HsmException;
import io.hsmbridge.protocol.ErrorCode;
import io.vertx.core.json.JsonObject;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.SeekableByteChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.LinkOption;
import java.nio.file.NoSuchFileException;
import java.nio.file.OpenOption;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.nio.file.attribute.FileAttribute;
import java.nio.file.attribute.PosixFilePermission;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.logging.Logger;

/**
 * The default {@link BackupStore}: one directory ({@code backup.dir}) holding, per backup,
 * {@code <id>.hbk} (the backup file) and {@code <id>.json} (its {@link BackupRecord}), and the catalog's
 * {@code retention.json}. Writes go to a {@code .tmp-*} file in the same directory, are fsynced, then
 * published by a hard link (a new backup file or record: fails if the name exists, so nothing is ever
 * overwritten, even by a racing writer) or an atomic rename (a record replaced); the directory is
 * fsynced after. A crash leaves at most a {@code .tmp-*} file, which is never listed.
 *
 * <p>Reads never follow a symbolic link and refuse anything but a regular file: whoever can write the
 * directory could otherwise point {@code <id>.hbk} at a file the agent can read (its TLS key) and have a
 * copy-to-region carry it to another store. Reads are bounded ({@link #DEFAULT_MAX_BACKUP_BYTES}, 64 KiB
 * for a record). Where the file system is POSIX, the directory is created 0700 and files 0600.
 *
 * <p>Thread-safe. Several processes may read one directory; only one catalog should change it.
 */
public final class DirectoryBackupStore implements BackupStore {
  public static final String FILE_SUFFIX = ".hbk";
  public static final String RECORD_SUFFIX = ".json";
  public static final String RETENTION_FILE = "retention.json";
  /** Larger backup files are refused on read (a replaced file must not exhaust the agent's memory). */
  public static final long DEFAULT_MAX_BACKUP_BYTES = 1L << 30;
  static final String TEMP_PREFIX = ".tmp-";
  static final int MAX_RECORD_BYTES = 64 * 1024;

  private static final Logger LOG = Logger.getLogger(DirectoryBackupStore.class.getName());
  private static final Set<PosixFilePermission> DIR_0700 = PosixFilePermissions.fromString("rwx------");
  private static final Set<PosixFilePermission> FILE_0600 = PosixFilePermissions.fromString("rw-------");
  private static final Set<OpenOption> READ_NO_LINKS = Set.of(StandardOpenOption.READ, LinkOption.NOFOLLOW_LINKS);

  private final String name;
  private final Path dir;
  private final long maxBackupBytes;
  private final boolean posix;
  /** Serialises check-and-rename where the file system has no hard links. */
  private final Object publishLock = new Object();

  private DirectoryBackupStore(String name, Path dir, long maxBackupBytes, boolean posix) {
    this.name = name;
    this.dir = dir;
    this.maxBackupBytes = maxBackupBytes;
    this.posix = posix;
  }

  public static DirectoryBackupStore open(String name, Path dir) {
    return open(name, dir, DEFAULT_MAX_BACKUP_BYTES);
  }

  /**
   * Opens the store rooted at {@code dir}, creating it (0700) when missing. CONFIG_INVALID, naming
   * {@code backup.dir}, when it is not a writable directory; INVALID_PARAMETER for a bad name.
   *
   * @param name letters, digits, '.', '_' or '-', 1..64 (e.g. a region)
   */
  public static DirectoryBackupStore open(String name, Path dir, long maxBackupBytes) {
    if (name == null || !name.matches("[A-Za-z0-9._-]{1,64}")) {
      throw BackupFailures.badParam("a backup store name is 1..64 letters, digits, '.', '_' or '-'");
    }
    if (maxBackupBytes < 1 || maxBackupBytes > Integer.MAX_VALUE - 8) {
      throw BackupFailures.badParam("maxBackupBytes must be 1.." + (Integer.MAX_VALUE - 8));
    }
    Path root = dir.toAbsolutePath().normalize();
    boolean posix = root.getFileSystem().supportedFileAttributeViews().contains("posix");
    try {
      if (!Files.exists(root)) {
        if (posix) {
          Files.createDirectories(root, PosixFilePermissions.asFileAttribute(DIR_0700));
        } else {
          Files.createDirectories(root);
        }
      }
    } catch (IOException e) {
      throw invalidDir(root, "cannot be created (" + e.getMessage() + ")");
    }
    if (!Files.isDirectory(root)) {
      throw invalidDir(root, "is not a directory");
    }
    if (!Files.isWritable(root)) {
      throw invalidDir(root, "is not writable");
    }
    if (posix) {
      warnIfOpen(root);
    }
    return new DirectoryBackupStore(name, root, maxBackupBytes, posix);
  }

  private static HsmException invalidDir(Path dir, String problem) {
    return new HsmException(ErrorCode.CONFIG_INVALID, "backup.dir " + dir + " " + problem);
  }

  /** An existing directory is not chmod-ed behind the operator's back, but a wide one is worth a warning. */
  private static void warnIfOpen(Path root) {
    try {
      Set<PosixFilePermission> p = Files.getPosixFilePermissions(root);
      if (p.contains(PosixFilePermission.GROUP_WRITE) || p.contains(PosixFilePermission.OTHERS_WRITE)
          || p.contains(PosixFilePermission.OTHERS_READ)) {
        LOG.warning("backup.dir " + root + " is " + PosixFilePermissions.toString(p)
            + ": others can read or replace backups (they cannot forge one the HSM accepts); 0700 is advised");
      }
    } catch (IOException e) {
      LOG.fine("cannot read the permissions of " + root + ": " + e.getMessage());
    }
  }

  @Override
  public String name() {
    return name;
  }

  /** The directory this store is rooted at. */
  public Path directory() {
    return dir;
  }

  Path fileOf(BackupId id) {
    return dir.resolve(id.value() + FILE_SUFFIX);
  }

  Path recordOf(BackupId id) {
    return dir.resolve(id.value() + RECORD_SUFFIX);
  }

  @Override
  public void put(BackupId id, byte[] bytes) {
    writeAtomically(fileOf(id), bytes, false, id, "backup file");
  }

  @Override
  public byte[] get(BackupId id) {
    byte[] bytes = readBounded(fileOf(id), maxBackupBytes, "the backup file of " + id);
    if (bytes == null) {
      throw BackupFailures.notFound(id, name);
    }
    return bytes;
  }

  @Override
  public boolean hasFile(BackupId id) {
    return Files.isRegularFile(fileOf(id), LinkOption.NOFOLLOW_LINKS);
  }

  @Override
  public void deleteFile(BackupId id) {
    remove(fileOf(id));
  }

  @Override
  public void delete(BackupId id) {
    remove(fileOf(id));
    remove(recordOf(id));
  }

  private void remove(Path p) {
    try {
      if (Files.deleteIfExists(p)) {
        syncDirectory();
      }
    } catch (IOException e) {
      throw BackupFailures.io("remove " + p.getFileName(), name, e);
    }
  }

  @Override
  public Optional<BackupRecord> readRecord(BackupId id) {
    String what = "the record of " + id + " in store " + name;
    byte[] bytes = readBounded(recordOf(id), MAX_RECORD_BYTES, what);
    if (bytes == null) {
      return Optional.empty();
    }
    BackupRecord r = BackupRecord.fromBytes(bytes, what);
    if (!r.backupId().equals(id)) {
      // A record copied over from another backup: consistent on its own, but not this backup's.
      throw BackupFailures.unreadable(what, "it names backup " + r.backupId());
    }
    return Optional.of(r);
  }

  @Override
  public void createRecord(BackupRecord record) {
    writeAtomically(recordOf(record.backupId()), record.toBytes(), false, record.backupId(), "record");
  }

  @Override
  public void replaceRecord(BackupRecord record) {
    writeAtomically(recordOf(record.backupId()), record.toBytes(), true, record.backupId(), "record");
  }

  @Override
  public List<Entry> list() {
    TreeMap<String, BackupId> ids = new TreeMap<>();
    try (DirectoryStream<Path> entries = Files.newDirectoryStream(dir)) {
      for (Path p : entries) {
        String file = p.getFileName().toString();
        String base = file.endsWith(FILE_SUFFIX) ? strip(file, FILE_SUFFIX)
            : file.endsWith(RECORD_SUFFIX) ? strip(file, RECORD_SUFFIX) : null;
        if (base != null && BackupId.isValid(base)) {
          ids.put(base, new BackupId(base));
        }
      }
    } catch (IOException | RuntimeException e) {
      throw BackupFailures.io("list " + dir, name, e);
    }
    List<Entry> found = new ArrayList<>(ids.size());
    for (BackupId id : ids.values()) {
      boolean hasFile = hasFile(id);
      try {
        Optional<BackupRecord> r = readRecord(id);
        found.add(r.isPresent() ? Entry.readable(r.get(), hasFile)
            : Entry.unreadable(id, "no record beside the backup file", hasFile));
      } catch (HsmException e) {
        found.add(Entry.unreadable(id, e.getMessage(), hasFile));
      }
    }
    return found;
  }

  private static String strip(String file, String suffix) {
    return file.substring(0, file.length() - suffix.length());
  }

  @Override
  public Optional<Integer> readRetentionDays() {
    String what = "the retention setting " + dir.resolve(RETENTION_FILE);
    byte[] bytes = readBounded(dir.resolve(RETENTION_FILE), 4096, what);
    if (bytes == null) {
      return Optional.empty();
    }
    try {
      JsonObject j = new JsonObject(new String(bytes, StandardCharsets.UTF_8));
      if (!(j.getValue("v") instanceof Integer v) || v != 1 || !(j.getValue("retentionDays") instanceof Integer days)) {
        throw BackupFailures.unreadable(what, "expected {\"v\":1,\"retentionDays\":<days>}");
      }
      return Optional.of(days);
    } catch (HsmException e) {
      throw e;
    } catch (RuntimeException e) {
      throw BackupFailures.unreadable(what, e.getClass().getSimpleName() + ": " + e.getMessage());
    }
  }

  @Override
  public void writeRetentionDays(int days) {
    byte[] bytes = (new JsonObject().put("v", 1).put("retentionDays", days).encode() + "\n")
        .getBytes(StandardCharsets.UTF_8);
    writeAtomically(dir.resolve(RETENTION_FILE), bytes, true, null, "retention setting");
  }

  /**
   * The whole file, or null when it does not exist. Refuses a symbolic link or anything but a regular
   * file, and anything larger than {@code max}, with a typed error.
   */
  private byte[] readBounded(Path p, long max, String what) {
    try {
      BasicFileAttributes a = Files.readAttributes(p, BasicFileAttributes.class, LinkOption.NOFOLLOW_LINKS);
      if (!a.isRegularFile()) {
        throw BackupFailures.unreadable(what, "not a regular file (links and special files are never followed)");
      }
      // O_NOFOLLOW as well: the name may have been swapped for a link since the check above.
      try (SeekableByteChannel ch = Files.newByteChannel(p, READ_NO_LINKS)) {
        long size = ch.size();
        if (size > max) {
          throw BackupFailures.unreadable(what, size + " bytes, more than the limit of " + max);
        }
        ByteBuffer buf = ByteBuffer.allocate((int) size);
        while (buf.hasRemaining() && ch.read(buf) >= 0) {
          // read until full or end of file (a file cut while being read gives what was there)
        }
        return buf.position() == size ? buf.array() : Arrays.copyOf(buf.array(), buf.position());
      }
    } catch (NoSuchFileException e) {
      return null;
    } catch (IOException e) {
      throw BackupFailures.io("read " + p.getFileName(), name, e);
    }
  }

  /**
   * Temp file in the same directory, written and fsynced, then published under {@code target}: replacing
   * it by an atomic rename, or as a new name only (hard link, which fails when the name exists).
   */
  private void writeAtomically(Path target, byte[] bytes, boolean replace, BackupId id, String what) {
    Path tmp = null;
    try {
      tmp = posix ? Files.createTempFile(dir, TEMP_PREFIX, ".part", fileAttributes())
          : Files.createTempFile(dir, TEMP_PREFIX, ".part");
      try (FileChannel ch = FileChannel.open(tmp, StandardOpenOption.WRITE)) {
        ByteBuffer b = ByteBuffer.wrap(bytes);
        while (b.hasRemaining()) {
          ch.write(b);
        }
        ch.force(true);
      }
      if (replace) {
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
      } else {
        publishNew(tmp, target, id, what);
      }
      syncDirectory();
    } catch (IOException e) {
      throw BackupFailures.io("write " + target.getFileName(), name, e);
    } finally {
      if (tmp != null) {
        try {
          Files.deleteIfExists(tmp);
        } catch (IOException e) {
          LOG.warning("backup store " + name + ": cannot remove the temporary file " + tmp + ": " + e.getMessage());
        }
      }
    }
  }

  private void publishNew(Path tmp, Path target, BackupId id, String what) throws IOException {
    try {
      Files.createLink(target, tmp);
    } catch (FileAlreadyExistsException e) {
      throw BackupFailures.alreadyExists(id, what, name);
    } catch (UnsupportedOperationException | IOException e) {
      // No hard links here (some network and FUSE file systems): check and rename under a lock, which
      // keeps this process's writers apart (one catalog per store, see the class comment).
      synchronized (publishLock) {
        if (Files.exists(target, LinkOption.NOFOLLOW_LINKS)) {
          throw BackupFailures.alreadyExists(id, what, name);
        }
        Files.move(tmp, target, StandardCopyOption.ATOMIC_MOVE);
      }
    }
  }

  private static FileAttribute<Set<PosixFilePermission>> fileAttributes() {
    return PosixFilePermissions.asFileAttribute(FILE_0600);
  }

  /** Makes a rename or removal durable; where a directory cannot be opened the rename is still atomic. */
  private void syncDirectory() {
    try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
      ch.force(true);
    } catch (IOException e) {
      LOG.finest("cannot fsync " + dir + ": " + e.getMessage());
    }
  }

  @Override
  public String toString() {
    return "DirectoryBackupStore[" + name + " at " + dir + "]";
  }
}
