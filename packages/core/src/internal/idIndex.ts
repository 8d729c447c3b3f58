/**
 * The ids seen so far in an experiment file, each with the line it was first on, kept in typed
 * arrays so that a file of millions of lines does not hold millions of strings and map entries.
 *
 * Ids compare as a `Map<string | number, number>` compares them (SameValueZero): the number `1`
 * and the string `"1"` are different ids, `0` and `-0` are the same id, and so are two NaNs.
 *
 * The index is exact (no hash is trusted): it never reports a duplicate that is not one and never
 * misses one. Each id is written once to a byte arena: a header (length and kind), the id itself,
 * then its first line. The id is written losslessly: one byte per UTF-16 code unit when every
 * unit is below 256, two bytes per unit otherwise (lone surrogates survive), or the eight bytes
 * of a number. An open-addressing table (linear probing, doubled at 0.7 load) holds per slot the
 * record's arena offset (Uint32) and 8 bits of the id's 32-bit hash (Uint8); a slot whose bits
 * match is compared byte by byte with the arena. On growth the hashes are computed again from
 * the arena.
 *
 * Cost per id: 5 bytes per table slot (7 to 14 bytes per id, depending on where the load is
 * between growths), plus the arena record: 1 byte of header up to 31 code units, the id (8
 * bytes for `p-123456`), and 1 to 3 bytes of line up to line 2,097,151. About 22 bytes in all
 * for a million `p-123456` ids, against about 53 in a `Map` (plus the garbage-collected heap's
 * slack).
 *
 * @internal
 */

/** A string whose code units are all below 256: one byte per unit. */
const kindNarrow = 0
/** A string with a code unit of 256 or more: two bytes per unit, low byte first. */
const kindWide = 1
/** A number: the eight bytes of its float64, with -0 written as 0 and every NaN as one NaN. */
const kindNumber = 2

const maxLoad = 0.7
const initialSlots = 1024
const initialArenaBytes = 16 * 1024
/** Arena offsets are stored plus one in a Uint32 (0 marks an empty slot). */
const maxArenaBytes = 0xffff_ffff

/** The id being looked up, when it is a number, in its canonical form. */
const idNumber = new Float64Array(1)
const idNumberBytes = new Uint8Array(idNumber.buffer)
const idNumberWords = new Uint32Array(idNumber.buffer)
/** A stored number, copied out of the arena to hash it again when the table grows. */
const storedNumber = new Float64Array(1)
const storedNumberBytes = new Uint8Array(storedNumber.buffer)
const storedNumberWords = new Uint32Array(storedNumber.buffer)

const fnvOffset = 0x811c_9dc5
const fnvPrime = 0x0100_0193

/** murmur3's 32-bit finalizer: spreads every input bit over the whole word. */
const fmix32 = (h: number): number => {
  h ^= h >>> 16
  h = Math.imul(h, 0x85eb_ca6b)
  h ^= h >>> 13
  h = Math.imul(h, 0xc2b2_ae35)
  h ^= h >>> 16
  return h >>> 0
}

/** The hash of a string: FNV-1a over its code units, finished with its length. */
const stringHash = (fnv: number, units: number): number => fmix32(fnv ^ units)

/** The hash of a number from the two words of its float64 (seeded apart from strings). */
const numberHash = (low: number, high: number): number => fmix32(low ^ fmix32(high ^ 0x9747_b28c))

/**
 * Experiment ids with the line each was first seen on.
 *
 * @internal
 */
export class IdIndex {
  /** Per slot, the arena offset of an id's record plus one; 0 for an empty slot. */
  #slots = new Uint32Array(initialSlots)
  /** Per slot, the top 8 bits of its id's hash: most candidates are turned away without the arena. */
  #tags = new Uint8Array(initialSlots)
  #mask = initialSlots - 1
  #limit = Math.floor(initialSlots * maxLoad)
  #arena = new Uint8Array(initialArenaBytes)
  #arenaUsed = 0
  /** Where the last varint read by `#varintAt` ended. */
  #afterVarint = 0
  #size = 0

  /** How many distinct ids the index holds. */
  get size(): number {
    return this.#size
  }

  /**
   * The line `id` was first seen on, if it was seen before; otherwise records it as first seen
   * on `line` (a whole number below 2^32) and returns `undefined`.
   */
  firstLineOrAdd(id: string | number, line: number): number | undefined {
    if (!Number.isInteger(line) || line < 0 || line > 0xffff_ffff) {
      throw new RangeError(`line ${line} cannot be stored (a whole number below 2^32 is needed)`)
    }
    if (this.#size >= this.#limit) this.#growTable()
    let kind: number
    let units: number
    let hash: number
    if (typeof id === "number") {
      idNumber[0] = id === 0 ? 0 : Number.isNaN(id) ? Number.NaN : id
      kind = kindNumber
      units = 8
      hash = numberHash(idNumberWords[0]!, idNumberWords[1]!)
    } else {
      let fnv = fnvOffset
      let allUnits = 0
      for (let i = 0; i < id.length; i++) {
        const unit = id.charCodeAt(i)
        allUnits |= unit
        fnv = Math.imul(fnv ^ unit, fnvPrime)
      }
      kind = allUnits < 256 ? kindNarrow : kindWide
      units = id.length
      hash = stringHash(fnv, units)
    }
    const header = units * 4 + kind
    const slots = this.#slots
    const tags = this.#tags
    const tag = hash >>> 24
    const mask = this.#mask
    let slot = hash & mask
    for (let key = slots[slot]!; key !== 0; key = slots[slot]!) {
      if (tags[slot] === tag) {
        const firstLine = this.#lineIfSame(key - 1, id, kind, header)
        if (firstLine !== undefined) return firstLine
      }
      slot = (slot + 1) & mask
    }
    slots[slot] = this.#append(id, kind, units, header, line) + 1
    tags[slot] = tag
    this.#size++
    return undefined
  }

  /** The first line stored in the record at `at`, if that record's id is `id`. */
  #lineIfSame(at: number, id: string | number, kind: number, header: number): number | undefined {
    if (this.#varintAt(at) !== header) return undefined
    const arena = this.#arena
    at = this.#afterVarint
    if (kind === kindNumber) {
      // idNumber still holds `id`, written by firstLineOrAdd
      for (let i = 0; i < 8; i++) if (arena[at + i] !== idNumberBytes[i]) return undefined
      at += 8
    } else if (kind === kindNarrow) {
      const text = id as string
      for (let i = 0; i < text.length; i++) if (arena[at + i] !== text.charCodeAt(i)) return undefined
      at += text.length
    } else {
      const text = id as string
      for (let i = 0; i < text.length; i++) {
        const unit = text.charCodeAt(i)
        if (arena[at + 2 * i] !== (unit & 0xff) || arena[at + 2 * i + 1] !== unit >>> 8) return undefined
      }
      at += 2 * text.length
    }
    return this.#varintAt(at)
  }

  /** The hash of the id in the record at `at`, as `firstLineOrAdd` computed it. */
  #hashAt(at: number): number {
    const header = this.#varintAt(at)
    const arena = this.#arena
    const kind = header % 4
    const units = (header - kind) / 4
    at = this.#afterVarint
    if (kind === kindNumber) {
      for (let i = 0; i < 8; i++) storedNumberBytes[i] = arena[at + i]!
      return numberHash(storedNumberWords[0]!, storedNumberWords[1]!)
    }
    let fnv = fnvOffset
    if (kind === kindNarrow) {
      for (let i = 0; i < units; i++) fnv = Math.imul(fnv ^ arena[at + i]!, fnvPrime)
    } else {
      for (let i = 0; i < units; i++) fnv = Math.imul(fnv ^ (arena[at + 2 * i]! | (arena[at + 2 * i + 1]! << 8)), fnvPrime)
    }
    return stringHash(fnv, units)
  }

  /** Reads a little-endian base-128 varint at `at`; `#afterVarint` is set to the byte after it. */
  #varintAt(at: number): number {
    const arena = this.#arena
    let value = 0
    let scale = 1
    for (;;) {
      const byte = arena[at++]!
      value += (byte & 0x7f) * scale
      if (byte < 0x80) break
      scale *= 128
    }
    this.#afterVarint = at
    return value
  }

  /** Writes `value` as a varint at `at` and returns the offset after it. */
  #writeVarint(at: number, value: number): number {
    const arena = this.#arena
    while (value >= 0x80) {
      arena[at++] = (value % 128) | 0x80
      value = Math.floor(value / 128)
    }
    arena[at++] = value
    return at
  }

  /** Writes the record of `id` (header, id, line) to the end of the arena and returns its offset. */
  #append(id: string | number, kind: number, units: number, header: number, line: number): number {
    const bytes = kind === kindNarrow ? units : kind === kindWide ? 2 * units : 8
    const offset = this.#arenaUsed
    this.#reserve(offset + 5 + bytes + 5)
    const arena = this.#arena
    let at = this.#writeVarint(offset, header)
    if (kind === kindNumber) {
      arena.set(idNumberBytes, at)
    } else if (kind === kindNarrow) {
      const text = id as string
      for (let i = 0; i < units; i++) arena[at + i] = text.charCodeAt(i)
    } else {
      const text = id as string
      for (let i = 0; i < units; i++) {
        const unit = text.charCodeAt(i)
        arena[at + 2 * i] = unit & 0xff
        arena[at + 2 * i + 1] = unit >>> 8
      }
    }
    this.#arenaUsed = this.#writeVarint(at + bytes, line)
    return offset
  }

  /** Makes the arena at least `needed` bytes long, doubling it. */
  #reserve(needed: number): void {
    if (needed <= this.#arena.length) return
    if (needed > maxArenaBytes) throw new RangeError("too much id text to index (over 4 GiB)")
    let length = this.#arena.length
    while (length < needed) length *= 2
    const arena = new Uint8Array(Math.min(length, maxArenaBytes))
    arena.set(this.#arena.subarray(0, this.#arenaUsed))
    this.#arena = arena
  }

  /** Doubles the table, placing every record again by its hash, computed from the arena. */
  #growTable(): void {
    const old = this.#slots
    const slots = new Uint32Array(old.length * 2)
    const tags = new Uint8Array(slots.length)
    const mask = slots.length - 1
    for (let i = 0; i < old.length; i++) {
      const key = old[i]!
      if (key === 0) continue
      const hash = this.#hashAt(key - 1)
      let slot = hash & mask
      while (slots[slot] !== 0) slot = (slot + 1) & mask
      slots[slot] = key
      tags[slot] = hash >>> 24
    }
    this.#slots = slots
    this.#tags = tags
    this.#mask = mask
    this.#limit = Math.floor(slots.length * maxLoad)
  }
}
