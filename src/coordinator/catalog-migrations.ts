// Versioned schema of the coordinator's catalog. The database's schema version
// is kept in `PRAGMA user_version` (0: empty database). Migration N takes a
// database from version N-1 to N inside one transaction, so a crash part way
// leaves the previous version intact. Append new migrations at the end; never
// edit or reorder one that has shipped (databases in the field ran it).
import type Database from 'better-sqlite3';
import { FerryError } from '../common/ferry-error.js';
import { ErrorCode } from '../gen/proto.js';
import { tracer } from '../common/trace.js';

const trace = tracer('catalog');

export interface CatalogMigration {
  /** The schema version this migration produces; migrations are numbered 1, 2, 3 ... */
  readonly version: number;
  readonly description: string;
  readonly up: (db: Database.Database) => void;
}

export const CATALOG_MIGRATIONS: readonly CatalogMigration[] = [
  {
    version: 1,
    description: 'hosts, jobs, ranks, event log',
    up: (db) => {
      db.exec(`
        CREATE TABLE hosts (
          name               TEXT PRIMARY KEY,
          address            TEXT NOT NULL,
          cpus               INTEGER NOT NULL,
          criu_version       TEXT NOT NULL,
          criu_check_ok      INTEGER NOT NULL,
          criu_check_detail  TEXT NOT NULL,
          agent_instance     TEXT NOT NULL,
          registered_ms      INTEGER NOT NULL,
          first_seen_ms      INTEGER NOT NULL,
          state              TEXT NOT NULL CHECK (state IN ('up', 'down', 'unknown')),
          state_changed_ms   INTEGER NOT NULL
        ) STRICT;

        CREATE TABLE jobs (
          id                   TEXT PRIMARY KEY,
          state                TEXT NOT NULL
                               CHECK (state IN ('pending', 'running', 'stopped', 'succeeded', 'failed', 'cancelled')),
          world_size           INTEGER NOT NULL CHECK (world_size > 0),
          argv_json            TEXT NOT NULL,
          cwd                  TEXT NOT NULL,
          env_json             TEXT NOT NULL,
          created_ms           INTEGER NOT NULL,
          checkpoint_every_ms  INTEGER,
          started_ms           INTEGER,
          ended_ms             INTEGER,
          exit_code            INTEGER,
          detail               TEXT
        ) STRICT;
        CREATE INDEX jobs_by_state ON jobs (state);

        CREATE TABLE ranks (
          job_id      TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          rank        INTEGER NOT NULL CHECK (rank >= 0),
          host        TEXT NOT NULL REFERENCES hosts (name),
          pid         INTEGER NOT NULL,
          endpoint    TEXT NOT NULL,
          state       TEXT NOT NULL CHECK (state IN ('starting', 'running', 'exited')),
          exit_code   INTEGER,
          signal      TEXT,
          updated_ms  INTEGER NOT NULL,
          PRIMARY KEY (job_id, rank)
        ) STRICT;
        CREATE INDEX ranks_by_host ON ranks (host);

        -- AUTOINCREMENT: sequence numbers are never reused, also after pruning.
        CREATE TABLE events (
          seq      INTEGER PRIMARY KEY AUTOINCREMENT,
          time_ms  INTEGER NOT NULL,
          kind     TEXT NOT NULL,
          host     TEXT,
          job_id   TEXT,
          message  TEXT NOT NULL
        ) STRICT;
        CREATE INDEX events_by_job ON events (job_id, seq);
      `);
    },
  },
  {
    version: 2,
    description: 'checkpoint epochs, their phases and per-rank images',
    up: (db) => {
      db.exec(`
        -- The per-job epoch counter lives on the job, not in MAX(epoch), so
        -- ids keep growing when old epochs are deleted.
        ALTER TABLE jobs ADD COLUMN last_epoch INTEGER NOT NULL DEFAULT 0;

        CREATE TABLE epochs (
          job_id        TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          epoch         INTEGER NOT NULL CHECK (epoch > 0),
          state         TEXT NOT NULL,
          started_ms    INTEGER NOT NULL,
          updated_ms    INTEGER NOT NULL,
          committed_ms  INTEGER,
          detail        TEXT,
          PRIMARY KEY (job_id, epoch)
        ) STRICT;
        CREATE INDEX epochs_by_state ON epochs (state);

        CREATE TABLE epoch_phases (
          seq     INTEGER PRIMARY KEY AUTOINCREMENT,
          job_id  TEXT NOT NULL,
          epoch   INTEGER NOT NULL,
          state   TEXT NOT NULL,
          at_ms   INTEGER NOT NULL,
          detail  TEXT,
          FOREIGN KEY (job_id, epoch) REFERENCES epochs (job_id, epoch) ON DELETE CASCADE
        ) STRICT;
        CREATE INDEX epoch_phases_by_epoch ON epoch_phases (job_id, epoch, seq);

        CREATE TABLE epoch_images (
          job_id         TEXT NOT NULL,
          epoch          INTEGER NOT NULL,
          rank           INTEGER NOT NULL CHECK (rank >= 0),
          host           TEXT NOT NULL,
          location       TEXT NOT NULL,
          size_bytes     INTEGER NOT NULL CHECK (size_bytes >= 0),
          sha256         TEXT NOT NULL,
          manifest_json  TEXT,
          PRIMARY KEY (job_id, epoch, rank),
          FOREIGN KEY (job_id, epoch) REFERENCES epochs (job_id, epoch) ON DELETE CASCADE
        ) STRICT;
      `);
    },
  },
  {
    version: 3,
    description: 'image stores: the store of each host and of each image',
    up: (db) => {
      // '' = not known: hosts and images from before stores were reported are
      // treated as before (an image is readable only on its own host).
      db.exec(`
        ALTER TABLE hosts ADD COLUMN image_store TEXT NOT NULL DEFAULT '';
        ALTER TABLE epoch_images ADD COLUMN image_store TEXT NOT NULL DEFAULT '';
      `);
    },
  },
  {
    version: 4,
    description: "jobs: the epoch a checkpoint --stop committed, while the job's ranks are being stopped",
    up: (db) => {
      // 0 = none: the job is not being stopped after a checkpoint.
      db.exec(`ALTER TABLE jobs ADD COLUMN stop_after_epoch INTEGER NOT NULL DEFAULT 0;`);
    },
  },
  {
    version: 5,
    description: 'epoch retention: how many committed epochs a job keeps, and which images were removed',
    up: (db) => {
      // keep_epochs 0 = the coordinator's default. removed_ms NULL = the image's files are still
      // on disk; set once an agent removed them (its epoch is 'deleted').
      db.exec(`
        ALTER TABLE jobs ADD COLUMN keep_epochs INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE epoch_images ADD COLUMN removed_ms INTEGER;
      `);
    },
  },
  {
    version: 6,
    description: "rank moves: a migration's ranks between the stop of their old copy and their restore",
    up: (db) => {
      // Written before a migration stops a rank's old copy, removed once its RESTORE answered: a row
      // left means the coordinator died in between, and says how to finish the move.
      db.exec(`
        CREATE TABLE rank_moves (
          job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          rank         INTEGER NOT NULL CHECK (rank >= 0),
          image_set    INTEGER NOT NULL CHECK (image_set > 0),
          from_host    TEXT NOT NULL,
          to_host      TEXT NOT NULL,
          source_json  TEXT NOT NULL,
          PRIMARY KEY (job_id, rank)
        ) STRICT;
      `);
    },
  },
  {
    version: 7,
    description: 'deleted jobs: hidden at once, gone once the last image of their epochs is removed',
    up: (db) => {
      // deleted_ms NULL = a job like any other. Set by ferry delete: from then on the job is unknown to
      // every request; its row stays only until agents removed its images, then it is purged.
      db.exec(`ALTER TABLE jobs ADD COLUMN deleted_ms INTEGER;`);
    },
  },
  {
    version: 8,
    description: "rank moves from before the FETCH: whether the rank's old copy was stopped yet",
    up: (db) => {
      // Rows of version 6 were written right before the STOP: stopped.
      db.exec(`ALTER TABLE rank_moves ADD COLUMN stopped INTEGER NOT NULL DEFAULT 1 CHECK (stopped IN (0, 1));`);
    },
  },
  {
    version: 9,
    description: 'the epoch a job was last restarted from, and the newest epoch id at that moment',
    up: (db) => {
      // 0 = never restarted. Committed epochs between the two were taken on a branch the restart
      // abandoned: retention deletes them once the job commits an epoch of its own.
      db.exec(`
        ALTER TABLE jobs ADD COLUMN branch_from INTEGER NOT NULL DEFAULT 0;
        ALTER TABLE jobs ADD COLUMN branch_at INTEGER NOT NULL DEFAULT 0;
      `);
    },
  },
  {
    version: 10,
    description: "restart copies: images a restart's targets fetched, until they are removed",
    up: (db) => {
      // Written before a restart's FETCH, removed once its target discarded the copy: a row left means
      // a coordinator died in between (or the target was unreachable), and the copy is removed when that
      // host registers.
      db.exec(`
        CREATE TABLE restart_copies (
          job_id  TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          epoch   INTEGER NOT NULL CHECK (epoch > 0),
          host    TEXT NOT NULL,
          rank    INTEGER NOT NULL CHECK (rank >= 0),
          PRIMARY KEY (job_id, epoch, host, rank)
        ) STRICT;
      `);
    },
  },
  {
    version: 11,
    description: 'rank moves keyed by their migration too: two migrations of one rank can both be unfinished',
    up: (db) => {
      // A migration cut short before its STOP leaves a move whose target copy waits for that host to
      // register; a later migration of the same rank must not overwrite it (nor clear it when done).
      db.exec(`
        CREATE TABLE rank_moves_by_set (
          job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          rank         INTEGER NOT NULL CHECK (rank >= 0),
          image_set    INTEGER NOT NULL CHECK (image_set > 0),
          from_host    TEXT NOT NULL,
          to_host      TEXT NOT NULL,
          source_json  TEXT NOT NULL,
          stopped      INTEGER NOT NULL DEFAULT 1 CHECK (stopped IN (0, 1)),
          PRIMARY KEY (job_id, rank, image_set)
        ) STRICT;
        INSERT INTO rank_moves_by_set (job_id, rank, image_set, from_host, to_host, source_json, stopped)
          SELECT job_id, rank, image_set, from_host, to_host, source_json, stopped FROM rank_moves;
        DROP TABLE rank_moves;
        ALTER TABLE rank_moves_by_set RENAME TO rank_moves;
      `);
    },
  },
  {
    version: 12,
    description: 'automatic restarts: how many times a job that lost a host is restarted from its last epoch',
    up: (db) => {
      // auto_restart_due: the job failed by a lost host and its restart has not started yet (a coordinator
      // that restarts in between starts it).
      db.exec(`
        ALTER TABLE jobs ADD COLUMN auto_restarts INTEGER NOT NULL DEFAULT 0 CHECK (auto_restarts >= 0);
        ALTER TABLE jobs ADD COLUMN auto_restart_due INTEGER NOT NULL DEFAULT 0 CHECK (auto_restart_due IN (0, 1));
      `);
    },
  },
  {
    version: 13,
    description: "image replicas: verified copies of a committed epoch's images on hosts other than their writer",
    up: (db) => {
      // 'copying': a FETCH to that host is (or was, if its coordinator died) under way: not a source,
      // and removed unless it ends 'stored'. A row goes when its host has removed the copy.
      db.exec(`
        CREATE TABLE image_replicas (
          job_id      TEXT NOT NULL,
          epoch       INTEGER NOT NULL,
          rank        INTEGER NOT NULL CHECK (rank >= 0),
          host        TEXT NOT NULL,
          state       TEXT NOT NULL CHECK (state IN ('copying', 'stored')),
          updated_ms  INTEGER NOT NULL,
          PRIMARY KEY (job_id, epoch, rank, host),
          FOREIGN KEY (job_id, epoch) REFERENCES epochs (job_id, epoch) ON DELETE CASCADE
        ) STRICT;
        CREATE INDEX image_replicas_by_host ON image_replicas (host);
      `);
    },
  },
  {
    version: 14,
    description: 'forgotten hosts: gone for good, said the operator (ferry forget)',
    up: (db) => {
      // forgotten_ms NULL = a host like any other. A forgotten host's row stays (its jobs' ranks name it)
      // but no list shows it; it comes back as a new host if an agent registers under its name again.
      db.exec(`ALTER TABLE hosts ADD COLUMN forgotten_ms INTEGER;`);
    },
  },
  {
    version: 15,
    description: "a job's own number of image replicas",
    up: (db) => {
      // NULL = the coordinator's --image-replicas; a number (0 included) = the job's own.
      db.exec(`ALTER TABLE jobs ADD COLUMN image_replicas INTEGER CHECK (image_replicas >= 0);`);
    },
  },
  {
    version: 16,
    description: "an epoch's output marks: how much of each rank's output was passed on when it was flushed",
    up: (db) => {
      // JSON (OutputMarks, src/coordinator/output-replay.ts); NULL: not taken (an epoch from before).
      db.exec(`ALTER TABLE epochs ADD COLUMN output_marks TEXT;`);
    },
  },
  {
    version: 17,
    description: 'drained hosts: no new ranks go there (ferry drain, until ferry undrain)',
    up: (db) => {
      // drained_ms NULL = ranks may be placed there. Kept across agent and coordinator restarts.
      db.exec(`
        ALTER TABLE hosts ADD COLUMN drained_ms INTEGER;
        ALTER TABLE hosts ADD COLUMN drain_reason TEXT NOT NULL DEFAULT '';
      `);
    },
  },
  {
    version: 18,
    description: 'image folders a forgotten host held: removed if it registers again',
    up: (db) => {
      // One row per rank folder of an image set (epoch or migration) in the forgotten host's images
      // directory. The catalog stops listing those images when the host is forgotten; should an agent
      // register under that name again with the same disk, these rows say what to remove.
      db.exec(`
        CREATE TABLE forgotten_image_dirs (
          host TEXT NOT NULL,
          job_id TEXT NOT NULL,
          image_set INTEGER NOT NULL,
          rank INTEGER NOT NULL,
          PRIMARY KEY (host, job_id, image_set, rank)
        ) STRICT;
      `);
    },
  },
  {
    version: 19,
    description: "the hosts a job runs on: its restarts and drains keep it there",
    up: (db) => {
      // JSON array of host names (--hosts, the hosts of --map or of a launcher's ranks; replaced by a
      // restart that names hosts, widened by ferry migrate --to). NULL: any host (a job spread over all).
      db.exec(`ALTER TABLE jobs ADD COLUMN hosts_json TEXT;`);
    },
  },
  {
    version: 20,
    description: "how much of each rank's output the job's followers were given, kept across coordinator restarts",
    up: (db) => {
      // Saved every second and with each epoch's output marks (output-replay.ts): a rollback after a
      // coordinator restart still knows what the followers saw. A count saved late is lower than the
      // truth, so at worst some output is shown twice, never hidden.
      db.exec(`
        CREATE TABLE output_counts (
          job_id       TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          rank         INTEGER NOT NULL,
          stdout_bytes INTEGER NOT NULL,
          stderr_bytes INTEGER NOT NULL,
          PRIMARY KEY (job_id, rank)
        ) STRICT;
      `);
    },
  },
  {
    version: 21,
    description: "the size of each append-only file a rank had open, at its dump: a restart cuts what was appended after it",
    up: (db) => {
      // JSON array of {path, sizeBytes} (ferry-append-files, src/criu/written-files.ts). NULL: none
      // recorded (images from before this version, or a tree with no such file).
      db.exec(`ALTER TABLE epoch_images ADD COLUMN appended_json TEXT;`);
    },
  },
  {
    version: 22,
    description: "the failure or cancel that is ending a job, kept until its last rank ends",
    up: (db) => {
      // JSON {exitCode, detail, secondary, lostHost} (JobEnding, catalog-types.ts). NULL: the job is not
      // ending of a failure. A coordinator restarted while the ranks die keeps the job's real status.
      db.exec(`ALTER TABLE jobs ADD COLUMN ending_json TEXT;`);
    },
  },
  {
    version: 23,
    description: 'flushes begun and not yet finished on every rank: a restarted coordinator finishes them',
    up: (db) => {
      // One row from the moment a checkpoint's epoch or a migration's image set is handed out (before its
      // PREPARE is sent) until its flush has ended on every rank or will not be finished (flush-completion.ts).
      // A coordinator killed while it sent a PREPARE may have reached some agents only: the next one sends
      // the same PREPARE to every rank before any is resumed.
      db.exec(`
        CREATE TABLE open_flushes (
          job_id    TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          image_set INTEGER NOT NULL CHECK (image_set > 0),
          kind      TEXT NOT NULL CHECK (kind IN ('checkpoint', 'migration')),
          PRIMARY KEY (job_id, image_set)
        ) STRICT;
      `);
    },
  },
  {
    version: 24,
    description: "whether the job's current endpoint table went out: a restarted coordinator hands it again",
    up: (db) => {
      // 1 from the moment the coordinator has every rank's endpoint and sends the table, until the first
      // endpoint of the next gathering. A coordinator killed while it sent the table to the hosts (some got
      // it) hands the same table to a host whose ranks still wait, when that host tells their endpoints again.
      // A coordinator of before this version handed the catalog's table to any rank that said hello again
      // while it gathered none: its running jobs keep that.
      db.exec(`
        ALTER TABLE jobs ADD COLUMN endpoints_published INTEGER NOT NULL DEFAULT 0 CHECK (endpoints_published IN (0, 1));
        UPDATE jobs SET endpoints_published = 1 WHERE state = 'running';
      `);
    },
  },
  {
    version: 25,
    description: "whether the job's launcher is suspended (SIGTSTP ... SIGCONT), and its ranks stopped with it",
    up: (db) => {
      // 1 from a launcher's SIGTSTP that a rank-exec passed on until its SIGCONT or the job's end. A
      // coordinator restarted meanwhile keeps refusing to flush ranks that are stopped, and keeps the leases waiting.
      db.exec(`ALTER TABLE jobs ADD COLUMN launcher_suspended INTEGER NOT NULL DEFAULT 0 CHECK (launcher_suspended IN (0, 1));`);
    },
  },
  {
    version: 26,
    description: 'ranks given up with their host, whose output from there is left out once they run elsewhere',
    up: (db) => {
      // One row from the moment the coordinator gives a rank up with its host (given-up-copies.ts) until the
      // rank is placed on that host again or its job is deleted. A coordinator restarted before the host
      // comes back still leaves out what the given-up copy printed while it was cut off.
      db.exec(`
        CREATE TABLE given_up_copies (
          job_id TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          rank   INTEGER NOT NULL CHECK (rank >= 0),
          host   TEXT NOT NULL,
          PRIMARY KEY (job_id, rank, host)
        ) STRICT;
      `);
    },
  },
  {
    version: 27,
    description: "what a rollback drops of each rank's output, as its restored copy prints it again",
    up: (db) => {
      // One row per rank and stream from a rollback (an automatic restart) until the job's next rollback or its
      // end (output-replay.ts): `bytes` to drop, from `from_offset` in `source` once the restored copy's first
      // output came (NULL before), and the source the rank printed from before. A coordinator restarted while
      // the restored ranks print it again drops the rest of it all the same.
      db.exec(`
        CREATE TABLE output_repeats (
          job_id        TEXT NOT NULL REFERENCES jobs (id) ON DELETE CASCADE,
          rank          INTEGER NOT NULL CHECK (rank >= 0),
          stream        INTEGER NOT NULL CHECK (stream IN (0, 1)),
          bytes         INTEGER NOT NULL CHECK (bytes > 0),
          before_source TEXT,
          source        TEXT,
          from_offset   INTEGER CHECK (from_offset >= 0),
          PRIMARY KEY (job_id, rank, stream)
        ) STRICT;
      `);
    },
  },
];

/** The schema version this build of Ferry writes. */
export const CATALOG_SCHEMA_VERSION = CATALOG_MIGRATIONS[CATALOG_MIGRATIONS.length - 1]!.version;

export function readSchemaVersion(db: Database.Database): number {
  return db.pragma('user_version', { simple: true }) as number;
}

/**
 * Brings `db` (the file `file`, named in errors) up to the last version of
 * `migrations`, one transaction per migration, and returns that version.
 * A database from a newer schema is refused, never downgraded.
 */
export function migrateCatalog(
  db: Database.Database,
  file: string,
  migrations: readonly CatalogMigration[] = CATALOG_MIGRATIONS,
): number {
  migrations.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new FerryError(ErrorCode.INTERNAL, `catalog migration list is out of order: entry ${i} has version ${m.version}`);
    }
  });
  const target = migrations.length;
  const found = readSchemaVersion(db);
  if (found > target) throw newerSchemaError(file, found, target);
  for (const m of migrations.slice(found)) {
    trace(`${file}: migrating to schema version ${m.version} (${m.description})`);
    db.transaction(() => {
      m.up(db);
      // user_version lives in the database header and is part of this transaction.
      db.pragma(`user_version = ${m.version}`);
    }).immediate();
  }
  return target;
}

export function newerSchemaError(file: string, found: number, supported: number): FerryError {
  return new FerryError(
    ErrorCode.VERSION_MISMATCH,
    `catalog ${file} has schema version ${found}, newer than version ${supported} that this Ferry supports; ` +
      'use a newer Ferry (the file was left unchanged)',
  );
}
