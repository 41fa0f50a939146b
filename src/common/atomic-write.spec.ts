import { mkdtempSync, readdirSync, readFileSync } from 'fs';
import { tmpdir } from 'os';
import { join } from 'path';
import { writeFileAtomic } from './atomic-write';

describe(writeFileAtomic.name, () => {
  afterEach(() => jest.restoreAllMocks());

  it('should write the content and leave no temp file', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
    const target = join(dir, 'sub', 'model.json');
    writeFileAtomic(target, '{"v":1}');
    expect(readFileSync(target, 'utf8')).toBe('{"v":1}');
    expect(readdirSync(join(dir, 'sub'))).toEqual(['model.json']);
  });

  it('should leave the previous file intact when the write crashes midway', () => {
    const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
    const target = join(dir, 'model.json');
    writeFileAtomic(target, 'previous');
    // The crash: a few bytes reach the temp file, then the process "dies" inside the write.
    const fs = require('fs') as typeof import('fs');
    const realWrite = fs.writeSync;
    jest
      .spyOn(fs, 'writeSync')
      .mockImplementationOnce(((fd: number, buf: Buffer, off: number) => realWrite(fd, buf, off, 3)) as typeof fs.writeSync)
      .mockImplementationOnce(() => {
        throw new Error('simulated crash');
      });
    expect(() => writeFileAtomic(target, 'the new, longer content')).toThrow('simulated crash');
    expect(readFileSync(target, 'utf8')).toBe('previous');
    expect(readdirSync(dir)).toEqual(['model.json']);
  });
});
