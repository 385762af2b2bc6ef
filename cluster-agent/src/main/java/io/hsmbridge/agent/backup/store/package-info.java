/**
 * Where backup files live and how their lifecycle runs (issue #12, items 5 and 6): a {@link
 * io.hsmbridge.agent.backup.store.BackupStore} holds the files and one metadata record per backup, a
 * {@link io.hsmbridge.agent.backup.store.BackupCatalog} moves records through their states (creation,
 * deletion with a 7-day undo, retention) with an injected clock.
 *
 * <p>The store is untrusted storage, like OpenBao's physical backends: whoever can write the directory
 * can delete, replace or withhold backups, and edit their metadata. A backup file is opaque here; its
 * content is authenticated by the HSM that restores it, never by this package. The store only refuses to
 * crash or misbehave on what it reads (garbage metadata is reported, symbolic links are not followed,
 * ids cannot name a path outside the directory). See docs/backup-lifecycle.md.
 */
package io.hsmbridge.agent.backup.store;
