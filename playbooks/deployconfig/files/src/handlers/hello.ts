export const handler = () => "hi";
