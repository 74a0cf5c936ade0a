// js/numbers.js — counts in the reader's locale, with their noun.

// One Intl.NumberFormat: Number.toLocaleString() builds one per call, which showed in profiles.
const numberFormat = new Intl.NumberFormat();

/** @n with the locale's digit grouping: "12,345". */
export const num = (n) => numberFormat.format(n);

/** "1 topic", "12,345 topics": @n and its noun, @one or @many. */
export const plural = (n, one, many = `${one}s`) => `${num(n)} ${n === 1 ? one : many}`;
