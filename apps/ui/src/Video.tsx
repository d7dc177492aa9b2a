import { useEffect, useRef } from 'react';

export interface VideoProps {
  stream: MediaStream | null;
  role: 'local' | 'remote';
  label: string;
  className?: string;
}

/** A `<video>` bound to a MediaStream; React has no prop for `srcObject`. */
export function Video({ stream, role, label, className }: VideoProps) {
  const ref = useRef<HTMLVideoElement>(null);
  useEffect(() => {
    const video = ref.current;
    if (video && video.srcObject !== stream) video.srcObject = stream;
  }, [stream]);
  // The local preview is muted so no one hears their own microphone.
  return <video ref={ref} data-role={role} className={className} aria-label={label} autoPlay playsInline muted={role === 'local'} />;
}
