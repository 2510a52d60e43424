/**
 * The workflows a worker of the release before `--parts` registered for waves: `reissueWave` only, no
 * `reissueWavePart`. Stands in for an older worker in test/workflows/wave.test.ts (a split wave must not run on it).
 */
export { reissueWave } from '../../workflows/wave';
