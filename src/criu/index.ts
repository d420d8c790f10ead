// CRIU on this node: finding it, provisioning it, and `ferry doctor`.
export { type CriuCandidate, type CriuInstall, criuCacheCommand, criuCacheDir, criuCheck, criuVersion, findCriu, findCriuCandidates } from './criu-install.js';
export { CRIU_PACKAGES, CRIU_SUITE, CriuProvisionError, type CriuProvisionStep, ensureCriu, provisionCriu } from './criu-provision.js';
export { type DoctorCheck, type DoctorReport, formatDoctor, runDoctor } from './doctor.js';
