// apache-md5 ships no types: its one export hashes a password with Apache's $apr1$ MD5 (the salt is read from
// a previous hash when given).
declare module 'apache-md5' {
  export default function md5(password: string, salt?: string): string;
}
