// Run by scripts/setup.sh: makes sure this node has a working CRIU and says
// which one in one line on stderr. A node that cannot provision (not root, no
// apt) is not an error: the control plane runs without CRIU, only checkpoints
// do not. Exit 1 only when provisioning was possible and failed.
import { errorMessage } from '../common/ferry-error.js';
import { CriuProvisionError, ensureCriu } from './criu-provision.js';

async function main(): Promise<number> {
  try {
    const install = await ensureCriu();
    process.stderr.write(`criu: ${install.version} (${install.source}) ${install.command}\n`);
    return 0;
  } catch (err) {
    if (err instanceof CriuProvisionError && err.impossible) {
      process.stderr.write(
        `criu: no working CRIU, and it cannot be provisioned here: ${err.detail} (step ${err.step}); ` +
          'checkpoint, restart and migration will not work on this node (the control plane still runs)\n',
      );
      return 0;
    }
    process.stderr.write(`criu: ${errorMessage(err)}\n`);
    return 1;
  }
}

process.exitCode = await main();
