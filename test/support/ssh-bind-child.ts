/**
 * A worker stand-in that binds over SSH and can be killed mid-bind (test/integration/ssh-binding.test.ts):
 * reads a job file (host, target settings, material, thumbprint), runs bindFiles over the SSH host and prints
 * the outcome. The test kills it with SIGKILL while its validate command runs, then re-runs the bind itself the
 * way an activity retry would.
 */
import { readFileSync } from 'node:fs';
import { bindFiles, type FileReloadTarget, type KeyMaterial } from '../../activities/bindings/file-reload';
import { SshPool, type SshHost } from '../../activities/bindings/ssh-connection';
import { sshFileHost } from '../../activities/bindings/ssh-file-host';

interface Job {
  host: SshHost;
  target: FileReloadTarget;
  material: KeyMaterial;
  thumbprint: string;
}

const job = JSON.parse(readFileSync(process.argv[2]!, 'utf8')) as Job;
const pool = new SshPool();
bindFiles({ ...job.target, host: sshFileHost(job.host, pool) }, job.material, job.thumbprint)
  .then((o) => process.stdout.write(`${JSON.stringify({ status: o.status, detail: o.detail })}\n`))
  .finally(() => pool.close());
